"""What every console script shares: one-line errors with exit code 2, logging to stderr."""

from __future__ import annotations

import argparse
import errno
import functools
import logging
import sys

from translate.errors import UsageError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistyped flag or value is a UsageError like every other bad input: one line (with
    a pointer to --help instead of the whole usage text) and exit code 2."""

    def error(self, message: str):  # argparse's hook
        raise UsageError(f"{message} (see {self.prog} --help)")


def fail(prog: str, message: str, code: int = 2) -> int:
    first = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    print(f"{prog}: error: {first}", file=sys.stderr)
    return code


class _NoteFormatter(logging.Formatter):
    """`PROG: note: message` for INFO records, `PROG: warning: message` above."""

    def __init__(self, prog: str):
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        kind = "note" if record.levelno < logging.WARNING else "warning"
        return f"{self.prog}: {kind}: {record.getMessage()}"


def show_package_notes(prog: str) -> None:
    """Print the package's log records (notes from the data pipeline, the spectral monitor's warnings)
    on stderr as `PROG: note: ...` lines. Without a handler Python drops INFO records, and the notes the
    docs promise (a stretched image pair, an upscaled image) were never seen."""
    logger = logging.getLogger("translate")
    for handler in list(logger.handlers):
        if isinstance(handler.formatter, _NoteFormatter):  # an earlier command's, in the same process
            logger.removeHandler(handler)
    handler = logging.StreamHandler()  # the sys.stderr of this call (a test's capture, say)
    handler.setFormatter(_NoteFormatter(prog))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def cli_entry(prog: str):
    """Decorate `main(argv) -> int`: a UsageError, or a file-system error on a path (a folder that is
    not writable, a file where a folder should be, a full disk), becomes one line on stderr and exit
    code 2; Ctrl-C outside a training loop exits with 130 and no traceback."""

    def wrap(main):
        @functools.wraps(main)
        def run(argv=None) -> int:
            show_package_notes(prog)
            try:
                return main(argv)
            except UsageError as e:
                return fail(prog, str(e))
            except OSError as e:
                message = user_os_error(e)
                if message is None:
                    raise  # not about a path the user gave: a bug to see whole
                return fail(prog, message)
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return 130

        return run

    return wrap


_OS_ERROR_HINTS = {
    errno.EACCES: "choose a place you can write to, or change its permissions",
    errno.EPERM: "choose a place you can write to, or change its permissions",
    errno.EROFS: "choose a place on a writable file system",
    errno.ENOTDIR: "a file stands where a folder is needed: choose another path",
    errno.EEXIST: "something already stands at that path: choose another one",
    errno.EISDIR: "a folder stands where a file is needed: choose another path",
    errno.ENOSPC: "free some disk space and run the command again",
    errno.EDQUOT: "free some disk space and run the command again",
    errno.ENOENT: "check the path",
}


def user_os_error(e: OSError) -> str | None:
    """One line for a file-system error the user can act on (on a path, or a full disk); None for
    any other OSError (a bug, to be seen whole)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        # A copy names its source first and the file it was writing second; image and file writers
        # name none.
        target = e.filename2 or e.filename
        what = f"cannot write {target}" if target else "the disk is full"
        return f"{what}: {e.strerror or 'no space left'}; {_OS_ERROR_HINTS[errno.ENOSPC]}"
    if e.filename is None or e.strerror is None:
        return None
    return describe_os_error(e)


def describe_os_error(e: OSError) -> str:
    """One line for a file-system error on a path: the path, what the system said, what to do."""
    hint = _OS_ERROR_HINTS.get(e.errno)
    return f"cannot use {e.filename}: {e.strerror}" + (f"; {hint}" if hint else "")


def info(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def domain_names(data: str) -> tuple[str, str]:
    """Domain names read from a dataset name of the form x2y ('photo2vangogh' -> photo, vangogh), else
    the registry's for its sets without one ('facades' -> photo, label), else A, B."""
    from pathlib import Path

    from translate.data.registry import lookup_dataset

    full = Path(data.rstrip("/")).name
    name = full
    for prefix in ("synth-", "cyclegan-"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.count("2") == 1:
        a, b = name.split("2")
        if a and b:
            return a, b
    found = lookup_dataset(full)
    if found is not None:
        entry, swap = found
        return (entry.domain_b, entry.domain_a) if swap else (entry.domain_a, entry.domain_b)
    return "A", "B"
