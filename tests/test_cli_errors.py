"""What every command does with a file-system failure: one line naming the file, exit code 2, and the
file it was replacing left as it was."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from translate.cli.common import cli_entry
from translate.train import checkpoint


def _raising(error: BaseException):
    @cli_entry("translate-test")
    def main(argv=None) -> int:
        raise error

    return main


@pytest.mark.parametrize("error, expected", [
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full: No space left on device; free some disk space"),
    (OSError(errno.ENOSPC, "No space left on device", "in/truth.png", None, "out/images/truth.png"),
     "cannot write out/images/truth.png: No space left on device"),  # a copy: source first, target second
    (OSError(errno.EACCES, "Permission denied", "out/x.png"), "cannot use out/x.png: Permission denied"),
])
def test_file_system_errors_the_user_can_act_on_are_one_line(capsys, error, expected):
    assert _raising(error)() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("translate-test: error: " + expected)


def test_other_os_errors_are_bugs_shown_whole():
    with pytest.raises(OSError):
        _raising(OSError(errno.EINVAL, "Invalid argument"))()


def test_a_checkpoint_that_fills_the_disk_is_named_and_the_old_one_kept(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    checkpoint.atomic_torch_save({"step": 1}, path)
    before = path.read_bytes()

    def short_write(obj, f):  # what torch's zip writer raises when a write comes up short
        f.write(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(checkpoint.torch, "save", short_write)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda folder: type("usage", (), {"free": 4096})())
    with pytest.raises(OSError) as full:
        checkpoint.atomic_torch_save({"step": 2}, path)
    assert full.value.errno == errno.ENOSPC and full.value.filename == str(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]
    # With space left the same failure is not a full disk: torch's error stays as it is.
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda folder: type("usage", (), {"free": 2**40})())
    with pytest.raises(RuntimeError, match="unexpected pos"):
        checkpoint.atomic_torch_save({"step": 2}, path)
    assert path.read_bytes() == before


def test_a_json_write_that_fills_the_disk_names_its_file(tmp_path, monkeypatch):
    def full_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", full_fsync)
    with pytest.raises(OSError) as full:
        checkpoint.atomic_write_json({"a": 1}, tmp_path / "config.json")
    assert full.value.filename == str(tmp_path / "config.json")
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_over_the_disk_quota_is_named_with_space_left_on_the_disk(tmp_path, monkeypatch):
    # torch.save turns the file's EDQUOT into a RuntimeError about zip positions; the disk itself
    # has room, so only the error's context tells that the quota is used up.
    import io

    path = tmp_path / "state.pt"
    checkpoint.atomic_torch_save({"step": 1}, path)
    before = path.read_bytes()
    fdopen = os.fdopen

    class OverQuota(io.RawIOBase):
        def __init__(self, fd):
            self.file, self.written = fdopen(fd, "wb", buffering=0), 0

        def writable(self):
            return True

        def write(self, data):
            self.written += len(data)
            if self.written > 2000:
                raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
            return self.file.write(data)

        def fileno(self):
            return self.file.fileno()

        def close(self):
            self.file.close()
            super().close()

    monkeypatch.setattr(checkpoint.os, "fdopen", lambda fd, mode: io.BufferedWriter(OverQuota(fd), buffer_size=512))
    with pytest.raises(OSError) as full:
        checkpoint.atomic_torch_save({"step": 2, "weights": torch.zeros(10000)}, path)
    assert full.value.errno == errno.EDQUOT and full.value.filename == str(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_a_write_that_cannot_start_names_the_file_not_its_hidden_temporary(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".G_A.safetensors.zi75ammy.tmp"))

    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as refused:
        checkpoint.atomic_write_bytes(b"x", tmp_path / "G_A.safetensors")
    assert refused.value.errno == errno.EROFS and refused.value.filename == str(tmp_path / "G_A.safetensors")
