"""Downloads that are atomic, checked and resumable, and archive extraction that cannot escape its target.

- A file is fetched into `NAME.part` and renamed only when complete. An interrupted transfer leaves the
  `.part` behind, and the next attempt continues it with an HTTP Range request (or starts over when
  the server ignores ranges).
- Completeness: the byte count must match the server's Content-Length (or Content-Range total), and
  the registry's exact size or SHA-256 where it has one.
- Extraction checks every member before writing it: absolute paths, `..` components, links (symbolic
  or hard) and special files are refused. Members go into a fresh temporary folder inside the datasets
  root, which is renamed into place only when everything is out; on any failure it is removed, so a
  dataset folder is either complete or absent.
- Network failures become one-line `UsageError`s that say what to do (retry, --mirror, or the built-in
  synthetic data).

Only the standard library is used (urllib, zipfile, tarfile).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.client
import os
import posixpath
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Iterator

from translate.errors import UsageError

MIRROR_ENV = "TRANSLATE_MIRROR"
OFFLINE_HINT = "check your connection, use --mirror URL, or train on the built-in --data synth-photo2vangogh"
_CHUNK = 1 << 20
_USER_AGENT = "translate-data/0.1 (+urllib)"


def mirror_from_env(mirror: str | None = None) -> str | None:
    """An explicit mirror, else $TRANSLATE_MIRROR, else None (the official host); UsageError for one
    that is not an http(s):// or file:// address."""
    chosen = mirror or os.environ.get(MIRROR_ENV) or None
    if chosen is not None and urllib.parse.urlsplit(chosen).scheme not in ("http", "https", "file"):
        where = "--mirror" if mirror else f"${MIRROR_ENV}"
        raise UsageError(f"{where} {chosen!r} is not an http(s):// or file:// address; give the mirror's URL, "
                         "e.g. http://host:8000")
    return chosen


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock on the directory itself, so no lock file is left).

    Several processes that resolve the same dataset at once (DDP ranks, parallel test sessions) then
    download or generate it once; the others wait and find it in place. Where flock is unavailable the
    atomic renames alone keep the result consistent.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _progress_bar(total: int | None, initial: int, description: str, enabled: bool):
    from tqdm import tqdm

    # disable=None lets tqdm turn itself off when stderr is not a terminal (logs, CI, tests).
    return tqdm(
        total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=description,
        file=sys.stderr, disable=None if enabled else True, leave=False,
    )


def _range_start(response) -> int | None:
    """The first byte of a 206 reply's Content-Range, or None."""
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    expected_size: int | None = None,
    sha256: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Fetch `url` into `dest` atomically (via `dest.part`), resuming a previous partial transfer.

    Raises UsageError (one line) when the host cannot be reached, answers with an error, the transfer
    breaks off (the .part is kept: run again to resume), or the result fails a size/checksum check
    (the .part is removed).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    try:
        try:
            response = _open(url, start, timeout)
        except urllib.error.HTTPError as error:
            if error.code != 416 or not start:
                raise
            # 416: the range starts at or past the end; the .part cannot be trusted, start over.
            part.unlink()
            start = 0
            response = _open(url, 0, timeout)
        if response.status == 206 and not (start and _range_start(response) == start):
            # Part of the file, but not the part after the .part (or none was asked for): start over.
            response.close()
            part.unlink(missing_ok=True)
            start = 0
            response = _open(url, 0, timeout)
            if response.status == 206:
                response.close()
                raise UsageError(f"{url} answered a request for the whole file with part of it; "
                                 "try again later or use --mirror URL")
    except urllib.error.HTTPError as error:
        raise UsageError(
            f"{url} answered HTTP {error.code} {error.reason}; the file may have moved: use --mirror URL "
            "or download it by hand"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise UsageError(f"could not reach {_host(url)} ({_reason(error)}); {OFFLINE_HINT}") from None

    with response:
        total: int | None = None
        content_range = response.headers.get("Content-Range", "")
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", content_range)
        if start and response.status == 206 and match and int(match.group(1)) == start:
            mode = "ab"
            if match.group(2) != "*":
                total = int(match.group(2))
        else:
            mode, start = "wb", 0  # the server sent the whole file
        if total is None and response.headers.get("Content-Length", "").isdigit():
            total = start + int(response.headers["Content-Length"])
        received = start
        try:
            handle = open(part, mode)
        except OSError as error:
            raise UsageError(f"could not write {part} ({_reason(error)}); check the folder and free space") from None
        with handle, _progress_bar(total, start, dest.name, progress) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (http.client.HTTPException, OSError) as error:
                    raise UsageError(
                        f"the download of {url} broke off after {received} of {total or '?'} bytes "
                        f"({_reason(error)}); run the same command again to resume it"
                    ) from None
                if not chunk:
                    break
                try:
                    handle.write(chunk)
                except OSError as error:
                    handle.close()
                    part.unlink(missing_ok=True)
                    raise UsageError(
                        f"could not write {part} ({_reason(error)}); free some space and run again"
                    ) from None
                received += len(chunk)
                bar.update(len(chunk))

    if total is not None and received < total:
        raise UsageError(
            f"the download of {url} broke off after {received} of {total} bytes; "
            "run the same command again to resume it"
        )
    size = part.stat().st_size
    if (total is not None and size != total) or (expected_size is not None and size != expected_size):
        part.unlink()
        expected = expected_size if expected_size is not None else total
        raise UsageError(f"{url} gave {size} bytes where {expected} were expected; the file was removed, try again")
    if sha256 is not None:
        digest = hashlib.sha256()
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(block)
        if digest.hexdigest() != sha256.lower():
            part.unlink()
            raise UsageError(f"{url} failed its SHA-256 check; the file was removed, try again or use --mirror URL")
    os.replace(part, dest)
    return dest


# -- safe extraction --------------------------------------------------------------------------------


def _member_problem(name: str) -> str | None:
    """Why an archive member name is unsafe, or None."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        return "has an absolute path"
    if ".." in normalized.split("/"):
        return "leaves the target folder (..)"
    if "\x00" in normalized:
        return "has a NUL byte in its name"
    return None


def _refuse(archive: Path, member: str, why: str) -> UsageError:
    return UsageError(f"refusing to extract {archive.name}: member {member!r} {why}; the archive was removed "
                      "(do not fetch it from that source again)")


def _inside(target: Path, name: str) -> Path:
    path = (target / name.replace("\\", "/")).resolve()
    if os.path.commonpath([str(path), str(target)]) != str(target):
        raise ValueError(name)
    return path


def _link_target(name: str, link: str, symbolic: bool) -> str:
    base = posixpath.dirname(name) if symbolic else ""
    return posixpath.normpath(posixpath.join(base, link))


class NotEnoughSpace(UsageError):
    """An archive that would not fit where it is unpacked: sound, so kept for the next attempt."""


#: the compression methods zipfile unpacks (others, such as Deflate64 from Windows' Explorer, fail mid-way)
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def _extract_zip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        members = zipped.infolist()
        # Check every member before writing any: the central directory lists them all up front.
        needed = 0
        for info in members:
            why = _member_problem(info.filename)
            if why:
                raise _refuse(archive, info.filename, why)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                link = zipped.read(info).decode("utf-8", "replace")
                outside = link.startswith("/") or _link_target(info.filename, link, True).startswith("..")
                raise _refuse(
                    archive, info.filename,
                    f"is a symbolic link to {link!r}" + (" outside the target" if outside else "")
                    + " (dataset archives hold only files and folders)",
                )
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _refuse(archive, info.filename, "is not a regular file or folder")
            if info.flag_bits & 0x1:
                raise UsageError(f"{archive.name} is encrypted (member {info.filename!r} needs a password); it was "
                                 "removed: unpack it by hand and pass its folder as --data")
            if info.compress_type not in _ZIP_METHODS:
                raise UsageError(
                    f"{archive.name} uses a compression method Python cannot unpack (method {info.compress_type} for "
                    f"member {info.filename!r}, e.g. Deflate64); it was removed: unpack it by hand (unzip, 7z) and "
                    "pass its folder as --data"
                )
            needed += info.file_size
        free = shutil.disk_usage(target).free
        if needed > free:
            raise NotEnoughSpace(
                f"{archive.name} unpacks to {needed / 1e9:.1f} GB but only {free / 1e9:.1f} GB are free "
                f"in {target.parent}; free some space and run again (the archive is kept there: it is not "
                "downloaded again)"
            )
        for info in members:
            _inside(target, info.filename)
            zipped.extract(info, target)  # reads through the CRC check: damaged data raises BadZipFile


def _extract_tar(archive: Path, target: Path) -> None:
    # Streamed: each member is checked, then written, in one pass over the (possibly huge) gzip stream.
    with tarfile.open(archive, mode="r:*") as tarred:
        for member in tarred:
            why = _member_problem(member.name)
            if why:
                raise _refuse(archive, member.name, why)
            if member.issym() or member.islnk():
                resolved = _link_target(member.name, member.linkname, member.issym())
                outside = member.linkname.startswith("/") or resolved == ".." or resolved.startswith("../")
                kind = "symbolic" if member.issym() else "hard"
                raise _refuse(
                    archive, member.name,
                    f"is a {kind} link to {member.linkname!r}" + (" outside the target" if outside else "")
                    + " (dataset archives hold only files and folders)",
                )
            if not (member.isfile() or member.isdir()):
                raise _refuse(archive, member.name, "is not a regular file or folder")
            _inside(target, member.name)
            if hasattr(tarfile, "data_filter"):
                tarred.extract(member, target, filter="data")
            else:  # Python < 3.11.4: the checks above already cover what the data filter refuses
                tarred.extract(member, target)


def _is_web_page(archive: Path) -> bool:
    """Whether `archive` holds HTML (an error, login or directory page served with status 200)."""
    try:
        with open(archive, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<?xml"))


def extract_archive(archive: str | os.PathLike, parent: str | os.PathLike) -> Path:
    """Extract a .zip or .tar(.gz) into a new temporary folder inside `parent` and return that folder.

    Unsafe members (absolute paths, '..', links, special files) or a damaged archive raise UsageError;
    the temporary folder is then already removed. The caller renames what it needs into place and
    removes the rest.
    """
    archive, parent = Path(archive), Path(parent)
    target = Path(tempfile.mkdtemp(prefix=".extract-", dir=parent)).resolve()
    try:
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, target)
            elif archive.name.endswith(".zip"):
                raise zipfile.BadZipFile("no zip directory (truncated?)")
            else:
                _extract_tar(archive, target)
        except UsageError:  # an unsafe member, refused by name (a ValueError too: not "damaged")
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError, zlib.error, gzip.BadGzipFile,
                NotImplementedError, RuntimeError) as error:  # (the last two: zipfile's, for what it cannot unpack)
            if _is_web_page(archive):  # fetching it again gets the same page: say where to look instead
                raise UsageError(
                    f"{archive.name} is a web page, not an archive (the server answered with a page instead of "
                    "the file); it was removed: check the mirror's address, or download the set by hand and pass "
                    "its folder as --data"
                ) from None
            raise UsageError(
                f"{archive.name} is damaged ({_reason(error)}); it was removed, run the same command again"
            ) from None
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NotEnoughSpace(f"could not unpack {archive.name} ({_reason(error)}); free some space and run "
                                     "again (the archive is kept there: it is not downloaded again)") from None
            raise UsageError(
                f"could not unpack {archive.name} ({_reason(error)}); check free space and run again"
            ) from None
    except BaseException:  # including KeyboardInterrupt: never leave a half-extracted folder
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def dataset_folder_in(extracted: Path, expected: str | None = None) -> Path:
    """The dataset folder inside an extracted archive: `expected` if present, else the single top
    folder, else the extraction folder itself."""
    if expected and (extracted / expected).is_dir():
        return extracted / expected
    entries = [e for e in extracted.iterdir() if e.name != "__MACOSX" and not e.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return extracted


def _holds_images(folder: Path) -> bool:
    from translate.data.images import IMAGE_EXTENSIONS

    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.rglob("*") if p.is_file())


def install_archive(archive: Path, final: Path, *, expected_folder: str | None = None) -> Path:
    """Extract `archive` and move its dataset folder to `final` (atomically); remove the archive either
    way, unless it did not fit the disk. If `final` appeared meanwhile (another process), that one is kept."""
    root = final.parent
    try:
        extracted = extract_archive(archive, root)
    except NotEnoughSpace:
        raise  # nothing wrong with the archive: the next run unpacks it without downloading it again
    except UsageError:
        archive.unlink(missing_ok=True)
        raise
    try:
        source = dataset_folder_in(extracted, expected_folder)
        if not _holds_images(source):
            raise UsageError(f"{archive.name} holds no images; it was removed: check the mirror, or download the set "
                             "by hand and pass its folder as --data")
        if source == extracted:  # the extraction folder itself: mkdtemp made it private
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(source, 0o777 & ~mask)
        if not final.exists():
            os.rename(source, final)
    finally:
        shutil.rmtree(extracted, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return final


def check_dataset_place(final: Path, name: str) -> None:
    """UsageError when something other than a folder stands where dataset `name` would be unpacked (a
    file, a dangling link): the download would be thrown away after it."""
    if not final.is_dir() and (final.exists() or final.is_symlink()):
        raise UsageError(f"{final} is a file, not a dataset folder, so {name} cannot be unpacked there; "
                         "move it away, or pass another --root")


def _remove_stale_extractions(root: Path) -> None:
    """Remove the `.extract-*` folders that extractions killed mid-way left in `root` (SIGKILL, a power
    cut: a whole unpacked dataset, hidden, never read). Called under `folder_lock(root)`, which every
    download's extraction holds, so none of them is in progress."""
    for folder in root.glob(".extract-*"):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def download_dataset(
    name: str,
    *,
    root: str | os.PathLike = "datasets",
    mirror: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download and unpack registry dataset `name` (or its alias) into root/NAME; return that folder.

    A folder that is already there is returned as it is. `mirror` (or $TRANSLATE_MIRROR) replaces the
    official host; the dataset's usual path is appended to it.
    """
    from translate.data.registry import lookup_dataset, suggest

    found = lookup_dataset(name)
    if found is None:
        raise UsageError(f"unknown dataset {name!r}{suggest(name)}; see `translate-data list`")
    entry, _ = found
    root = Path(root)
    final = root / entry.name
    if final.is_dir():
        return final
    check_dataset_place(final, entry.name)
    url = entry.url_from(mirror_from_env(mirror))
    root.mkdir(parents=True, exist_ok=True)
    with folder_lock(root):
        if final.is_dir():  # another process finished it while we waited
            return final
        _remove_stale_extractions(root)
        archive = root / f"{entry.name}{entry.archive_suffix}"
        # A finished archive is only ever left by an interrupted extraction: it passed its checks.
        if not archive.is_file():
            download_file(url, archive, expected_size=entry.size_bytes, sha256=entry.sha256,
                          timeout=timeout, progress=progress)
        return install_archive(archive, final, expected_folder=entry.archive_folder)
