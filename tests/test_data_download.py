"""Downloads against a local HTTP server: complete or absent, resumable, and never writing outside root."""

import io
import stat
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

import translate  # noqa: F401
from translate.cli.data import main
from translate.data.download import download_dataset, download_file
from translate.data.resolve import resolve_dataset
from translate.errors import UsageError
from tests._data_helpers import FileServer, pattern

MINI = "/cyclegan/datasets/mini.zip"
FACADES = "/pix2pix/datasets/facades.tar.gz"


def _png(seed: int, width: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pattern(8, width, seed)).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def _tar(members: dict[str, bytes], links: dict[str, tuple[bytes, str]] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            archive.addfile(info)
    return buffer.getvalue()


def _mini_zip() -> bytes:
    return _zip({f"mini/{folder}/{i}.png": _png(10 * k + i)
                 for k, folder in enumerate(["trainA", "trainB", "testA", "testB"]) for i in range(2)})


def _facades_tar() -> bytes:
    return _tar({f"facades/{split}/{i}.png": _png(i, width=16) for split in ("train", "val", "test") for i in range(2)})


def _leftovers(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


def test_good_zip_lands_complete_under_its_registry_name(tmp_path, server):
    server.files[MINI] = _mini_zip()
    path = download_dataset("mini", root=tmp_path, mirror=server.url, progress=False)
    assert path == tmp_path / "mini"
    assert sorted(p.name for p in path.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert not (tmp_path / "mini.zip").exists() and not (tmp_path / "mini.zip.part").exists()
    assert [p for p in tmp_path.iterdir() if p.name != "mini"] == []
    np.testing.assert_array_equal(np.asarray(Image.open(path / "trainB" / "1.png")), pattern(8, 8, 11))
    requests_before = len(server.requests)
    assert download_dataset("mini", root=tmp_path, mirror=server.url) == path  # already there: no request
    assert len(server.requests) == requests_before


def test_a_download_removes_what_a_killed_extraction_left(tmp_path, server):
    # An extraction killed mid-way (SIGKILL) left a hidden .extract-* folder, as large as the set, for ever.
    stale = tmp_path / ".extract-k1ll3d"
    (stale / "mini" / "trainA").mkdir(parents=True)
    (stale / "mini" / "trainA" / "0.png").write_bytes(_png(0))
    (tmp_path / ".extracted-notes").mkdir()  # not ours: kept
    server.files[MINI] = _mini_zip()
    download_dataset("mini", root=tmp_path, mirror=server.url, progress=False)
    assert _leftovers(tmp_path)[:1] == [".extracted-notes"] and not stale.exists()


def test_good_tar_gz_lands_complete(tmp_path, server):
    server.files[FACADES] = _facades_tar()
    resolved = resolve_dataset("facades", root=tmp_path, mirror=server.url, progress=False)
    assert resolved.layout == "aligned" and resolved.splits == ("train", "val", "test")
    assert _leftovers(tmp_path) == ["facades"] + [f"facades/{split}{file}" for split in ("test", "train", "val")
                                                  for file in ("", "/0.png", "/1.png")]


def test_cyclegan_archive_of_a_shared_name_is_stored_under_its_own_folder(tmp_path, server):
    server.files["/cyclegan/datasets/facades.zip"] = _zip({"facades/trainA/0.png": _png(1),
                                                           "facades/trainB/0.png": _png(2)})
    path = download_dataset("cyclegan-facades", root=tmp_path, mirror=server.url, progress=False)
    assert path == tmp_path / "cyclegan-facades" and (path / "trainA" / "0.png").is_file()


def test_mirror_environment_variable_replaces_the_official_host(tmp_path, server, monkeypatch):
    server.files[MINI] = _mini_zip()
    monkeypatch.setenv("TRANSLATE_MIRROR", server.url + "/")
    download_dataset("mini", root=tmp_path, progress=False)
    assert server.requests[0][0] == MINI


@pytest.mark.parametrize(
    "archive_path, archive, message",
    [
        (MINI, _mini_zip()[:400], "damaged"),
        (FACADES, _facades_tar()[:300], "damaged"),
        (MINI, _zip({"mini/trainA/0.png": b"x", "mini/../../evil.txt": b"x"}), "leaves the target folder"),
        (FACADES, _tar({"facades/train/0.png": b"x", "../evil.txt": b"x"}), "leaves the target folder"),
        (MINI, _zip({"/tmp/evil.txt": b"x"}), "absolute path"),
        (FACADES, _tar({"/tmp/evil.txt": b"x"}), "absolute path"),
        (FACADES, _tar({"facades/train/0.png": b"x"}, {"facades/train/link": (tarfile.SYMTYPE, "../../../etc")}),
         "symbolic link to '../../../etc' outside the target"),
        (FACADES, _tar({"facades/train/0.png": b"x"}, {"facades/hard": (tarfile.LNKTYPE, "../outside")}),
         "hard link"),
        (MINI, _zip({"mini/trainA/0.png": b"x"}, symlinks={"mini/trainA/link": "/etc/passwd"}),
         "symbolic link to '/etc/passwd' outside the target"),
    ],
    ids=["truncated-zip", "truncated-tar", "dotdot-zip", "dotdot-tar", "absolute-zip", "absolute-tar",
         "symlink-tar", "hardlink-tar", "symlink-zip"],
)
def test_bad_archives_are_refused_with_one_line_and_nothing_left_behind(tmp_path, server, capsys,
                                                                          archive_path, archive, message):
    server.files[archive_path] = archive
    name = "mini" if archive_path == MINI else "facades"
    root = tmp_path / "datasets"
    code = main(["download", name, "--root", str(root), "--mirror", server.url])
    stderr = capsys.readouterr().err
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("translate-data: error:") and message in lines[-1]
    if message != "damaged":  # an unsafe archive is refused as such, not taken for a damaged download
        assert "refusing to extract" in lines[-1] and "damaged" not in lines[-1] and "same command" not in lines[-1]
    assert all(not line.startswith("Traceback") for line in lines)
    assert _leftovers(root) == []
    assert not (tmp_path / "evil.txt").exists()


def test_an_archive_without_images_is_refused_and_removed(tmp_path, server, capsys):
    server.files[MINI] = _zip({"mini/readme.txt": b"moved to another host"})
    with pytest.raises(UsageError, match="mini.zip holds no images; it was removed"):
        download_dataset("mini", root=tmp_path, mirror=server.url, progress=False)
    assert _leftovers(tmp_path) == []  # the next attempt downloads again, not "already there"


def test_an_archive_without_a_top_folder_installs_with_ordinary_permissions(tmp_path, server):
    import os
    import stat

    server.files[MINI] = _zip({f"{folder}/0.png": _png(k) for k, folder in enumerate(["trainA", "trainB"])})
    path = download_dataset("mini", root=tmp_path, mirror=server.url, progress=False)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's private 0o700
    assert (path / "trainA" / "0.png").is_file()


def test_interrupted_download_keeps_the_part_and_resumes_with_a_range_request(tmp_path, server):
    payload = _mini_zip()
    server.files[MINI] = payload
    server.cut_after[MINI] = 500
    with pytest.raises(UsageError, match="broke off after 500 of .* run the same command again"):
        download_dataset("mini", root=tmp_path, mirror=server.url, progress=False)
    assert (tmp_path / "mini.zip.part").stat().st_size == 500
    assert not (tmp_path / "mini").exists()
    path = download_dataset("mini", root=tmp_path, mirror=server.url, progress=False)
    assert server.requests[-1] == (MINI, "bytes=500-")
    assert (path / "testB" / "1.png").is_file() and not (tmp_path / "mini.zip.part").exists()


def test_resume_starts_over_when_the_server_ignores_ranges(tmp_path, server):
    payload = b"0123456789" * 1000
    server.files["/file.bin"] = payload
    server.no_range = True
    (tmp_path / "file.bin.part").write_bytes(b"garbage")
    download_file(server.url + "/file.bin", tmp_path / "file.bin", progress=False)
    assert (tmp_path / "file.bin").read_bytes() == payload


def test_resume_starts_over_when_the_server_sends_another_part(tmp_path, server):
    payload = bytes(range(256)) * 40
    server.files["/file.bin"] = payload
    (tmp_path / "file.bin.part").write_bytes(payload[:1000])
    server.range_shift = -200  # asked for bytes 1000-, it sends 800- (a 206 that does not continue the .part)
    download_file(server.url + "/file.bin", tmp_path / "file.bin", progress=False)
    assert (tmp_path / "file.bin").read_bytes() == payload
    assert server.requests[-1] == ("/file.bin", None)  # the second request asked for the whole file


def test_size_and_checksum_checks_remove_a_wrong_file(tmp_path, server):
    server.files["/file.bin"] = b"abc"
    with pytest.raises(UsageError, match="3 bytes where 4 were expected"):
        download_file(server.url + "/file.bin", tmp_path / "f", expected_size=4, progress=False)
    with pytest.raises(UsageError, match="SHA-256"):
        download_file(server.url + "/file.bin", tmp_path / "f", sha256="0" * 64, progress=False)
    assert _leftovers(tmp_path) == []
    good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    download_file(server.url + "/file.bin", tmp_path / "f", sha256=good, expected_size=3, progress=False)
    assert (tmp_path / "f").read_bytes() == b"abc"


def test_http_errors_and_unreachable_hosts_are_one_line_usage_errors(tmp_path, server, capsys):
    assert main(["download", "mini", "--root", str(tmp_path), "--mirror", server.url]) == 2
    assert "answered HTTP 404" in capsys.readouterr().err
    assert main(["download", "mini", "--root", str(tmp_path), "--mirror", "http://127.0.0.1:9", "--timeout", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "could not reach 127.0.0.1:9" in err and "--mirror" in err and "synth-photo2vangogh" in err
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("command", [["download", "mini"], ["download-model", "horse2zebra"]])
def test_a_mirror_that_is_not_a_url_is_one_line_and_nothing_is_written(tmp_path, capsys, command):
    assert main([*command, "--root", str(tmp_path / "root"), "--mirror", "mirror.example.org"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--mirror 'mirror.example.org'" in err and "http" in err
    assert not (tmp_path / "root").exists() or _leftovers(tmp_path / "root") == []


def test_a_sample_under_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["sample", "synth-daytime", "--out", str(blocker / "s"), "--n", "2", "--size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("translate-data: error: cannot use") and "a_file" in err


def test_a_sample_into_a_folder_it_cannot_write_names_that_folder(tmp_path, capsys, monkeypatch):
    # (as root a read-only folder still takes files: the refusal is made by hand here)
    import errno

    import translate.data.resolve as resolve

    def refused(prefix, dir):
        raise PermissionError(errno.EROFS, "Read-only file system", f"{dir}/{prefix}k9x2ab7q")

    monkeypatch.setattr(resolve.tempfile, "mkdtemp", refused)
    out = tmp_path / "ro" / "s"
    assert main(["sample", "synth-daytime", "--out", str(out), "--n", "2", "--size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"cannot write {out}: Read-only file system in {out.parent}" in err and ".s-" not in err


def test_a_file_url_mirror_works_for_offline_copies(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "cyclegan" / "datasets").mkdir(parents=True)
    (mirror / "cyclegan" / "datasets" / "mini.zip").write_bytes(_mini_zip())
    path = download_dataset("mini", root=tmp_path / "datasets", mirror=mirror.as_uri(), progress=False)
    assert (path / "trainA" / "0.png").is_file()


def test_a_complete_archive_left_by_an_interrupted_extraction_is_reused(tmp_path, server):
    root = tmp_path / "datasets"
    root.mkdir()
    (root / "mini.zip").write_bytes(_mini_zip())
    path = download_dataset("mini", root=root, mirror=server.url, progress=False)
    assert server.requests == [] and (path / "testA" / "0.png").is_file() and not (root / "mini.zip").exists()


@pytest.mark.parametrize("archive", ["zip", "tar"])
def test_an_archive_that_does_not_fit_the_disk_is_kept_for_the_next_run(tmp_path, server, capsys, monkeypatch,
                                                                          archive):
    # The space refusal removed a sound archive: the next run downloaded all of it again.
    import errno
    import types

    import translate.data.download as download

    name, path = ("mini", MINI) if archive == "zip" else ("facades", FACADES)
    server.files[path] = _mini_zip() if archive == "zip" else _facades_tar()
    kept = tmp_path / path.rsplit("/", 1)[-1]
    if archive == "zip":  # its sizes are read before unpacking
        monkeypatch.setattr(download.shutil, "disk_usage", lambda _: types.SimpleNamespace(free=0))
    else:  # a tar is streamed: the disk fills mid-way
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(download.tarfile.TarFile, "extract", full)
    assert main(["download", name, "--root", str(tmp_path), "--mirror", server.url]) == 2
    assert "free some space and run again (the archive is kept there: it is not downloaded again)" in \
        capsys.readouterr().err
    assert _leftovers(tmp_path) == [kept.name]
    monkeypatch.undo()
    requests = len(server.requests)
    assert main(["download", name, "--root", str(tmp_path), "--mirror", server.url]) == 0
    assert len(server.requests) == requests and (tmp_path / name).is_dir() and not kept.exists()


@pytest.mark.parametrize("blocker", ["file", "dangling-link"])
def test_a_file_where_the_dataset_folder_goes_is_refused_before_downloading(tmp_path, server, capsys, blocker):
    server.files[MINI] = _mini_zip()
    root = tmp_path / "datasets"
    root.mkdir()
    if blocker == "file":
        (root / "mini").write_text("notes")
    else:
        (root / "mini").symlink_to(tmp_path / "gone")
    assert main(["download", "mini", "--root", str(root), "--mirror", server.url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "mini is a file, not a dataset folder" in err and "move it away" in err
    assert server.requests == []  # nothing fetched only to be thrown away
    assert _leftovers(root) == ["mini"]
    for download in (True, False):  # translate-train --data mini: the same line, not "when online"
        with pytest.raises(UsageError, match="is a file, not a dataset folder") as refused:
            resolve_dataset("mini", root=root, mirror=server.url, progress=False, download=download)
        assert "online" not in str(refused.value)


@pytest.mark.parametrize("archive_path", [MINI, FACADES])
def test_a_web_page_served_as_the_archive_is_named_as_such(tmp_path, server, capsys, archive_path):
    server.files[archive_path] = b"\n<!DOCTYPE html><html><body>Sign in to continue</body></html>\n"
    root = tmp_path / "datasets"
    assert main(["download", "mini" if archive_path == MINI else "facades", "--root", str(root),
                 "--mirror", server.url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is a web page, not an archive" in err and "mirror" in err
    assert "same command again" not in err  # running it again fetches the same page
    assert _leftovers(root) == []


def _zip_flagged(members: dict[str, bytes], *, encrypted: bool = False, method: int | None = None) -> bytes:
    """A zip whose headers say its members are encrypted, or compressed with another method."""
    import struct

    data = bytearray(_zip(members))
    for signature, flags_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            if encrypted:
                data[at + flags_at] |= 1
            if method is not None:
                struct.pack_into("<H", data, at + method_at, method)
            at = data.find(signature, at + 4)
    return bytes(data)


@pytest.mark.parametrize("flags, message", [({"encrypted": True}, "is encrypted"),
                                            ({"method": 9}, "compression method Python cannot unpack")],
                         ids=["encrypted", "deflate64"])
def test_a_zip_python_cannot_unpack_is_one_line_and_removed(tmp_path, server, capsys, flags, message):
    server.files[MINI] = _zip_flagged({"mini/trainA/0.png": _png(1), "mini/trainB/0.png": _png(2)}, **flags)
    root = tmp_path / "datasets"
    assert main(["download", "mini", "--root", str(root), "--mirror", server.url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and "unpack it by hand" in err
    assert _leftovers(root) == []  # not kept as an archive that passed its checks, to fail again next time
