"""What every console script shares: one-line errors with exit code 2, logging to stderr."""

from __future__ import annotations

import functools
import sys

from translate.errors import UsageError


def fail(prog: str, message: str, code: int = 2) -> int:
    first = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    print(f"{prog}: error: {first}", file=sys.stderr)
    return code


def cli_entry(prog: str):
    """Decorate `main(argv) -> int`: a UsageError becomes one line on stderr and exit code 2; Ctrl-C
    outside a training loop exits with 130 and no traceback."""

    def wrap(main):
        @functools.wraps(main)
        def run(argv=None) -> int:
            try:
                return main(argv)
            except UsageError as e:
                return fail(prog, str(e))
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return 130

        return run

    return wrap


def info(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def domain_names(data: str) -> tuple[str, str]:
    """Domain names read from a dataset name of the form x2y ('photo2vangogh' -> photo, vangogh), else A, B."""
    from pathlib import Path

    name = Path(data.rstrip("/")).name
    for prefix in ("synth-", "cyclegan-"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.count("2") == 1:
        a, b = name.split("2")
        if a and b:
            return a, b
    return "A", "B"
