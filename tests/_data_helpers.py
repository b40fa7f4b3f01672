"""Builders for tiny dataset folders, a fake synthetic generator and a local HTTP server (data tests)."""

from __future__ import annotations

import json
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image


def pattern(height: int, width: int, seed: int) -> np.ndarray:
    """A uint8 RGB image with structure everywhere (so crops and flips are visible)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def write_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_unaligned(root: Path, counts: dict[str, int], size: tuple[int, int] = (40, 48), truth: bool = False) -> Path:
    """root/{trainA,...}/NNN.png with distinct content; with truth, testA_truth/ and testB_truth/ hold
    the same file names with the inverted image (255 - A) as the 'true translation'."""
    h, w = size
    for offset, (folder, n) in enumerate(sorted(counts.items())):
        for i in range(n):
            image = pattern(h, w, seed=1000 * offset + i)
            write_image(root / folder / f"{i:03d}.png", image)
            if truth and folder in ("testA", "testB"):
                write_image(root / f"{folder}_truth" / f"{i:03d}.png", 255 - image)
    return root


def make_aligned(root: Path, splits: dict[str, int], size: tuple[int, int] = (32, 32), relation: str = "negate") -> Path:
    """root/{split}/NNN.png of side-by-side A|B images where B = 255 - A (relation 'negate') or B = A."""
    h, w = size
    for s, (split, n) in enumerate(sorted(splits.items())):
        for i in range(n):
            a = pattern(h, w, seed=500 * s + i)
            b = 255 - a if relation == "negate" else a
            write_image(root / split / f"{i:03d}.png", np.concatenate([a, b], axis=1))
    return root


def make_aligned_folders(root: Path, splits: dict[str, int], size: tuple[int, int] = (32, 32),
                         style: str = "split_first") -> Path:
    """root/{split}/A, root/{split}/B (style 'split_first') or root/A/{split}, root/B/{split}
    ('domain_first', the reference's pre-combine form); B = 255 - A. A files are .png and B files
    .BMP, so that pairs are matched by name without the extension."""
    h, w = size
    for s, (split, n) in enumerate(sorted(splits.items())):
        for i in range(n):
            a = pattern(h, w, seed=700 * s + i)
            folder_a = root / split / "A" if style == "split_first" else root / "A" / split
            folder_b = root / split / "B" if style == "split_first" else root / "B" / split
            write_image(folder_a / f"{i:03d}.png", a)
            write_image(folder_b / f"{i:03d}.BMP", 255 - a)
    return root


def fake_synthetic_module(calls: list | None = None, fail: bool = False) -> types.ModuleType:
    """Stands in for translate.data.synthetic (written on another branch): same API, tiny output.

    synth-photo2vangogh: unaligned with truths; synth-edges2landscape: aligned; synth-daytime: aligned
    with metadata.jsonl (label, text).
    """
    module = types.ModuleType("translate.data.synthetic")
    module.SYNTHETIC_SETS = {"synth-photo2vangogh": object(), "synth-edges2landscape": object(),
                             "synth-daytime": object()}

    def write_synthetic(name, out_dir, *, n_train=None, n_test=None, size=None, seed=0):
        if calls is not None:
            calls.append((name, n_train, n_test, size, seed))
        out_dir = Path(out_dir)
        n_train, n_test, size = n_train or 3, n_test or 2, size or 16
        if name == "synth-photo2vangogh":
            make_unaligned(out_dir, {"trainA": n_train, "trainB": n_train + 1, "testA": n_test, "testB": n_test},
                           size=(size, size), truth=True)
        else:
            make_aligned(out_dir, {"train": n_train, "test": n_test}, size=(size, size))
        if fail:
            raise RuntimeError("generator crashed half-way")
        if name == "synth-daytime":
            times = ["dawn", "noon", "dusk", "night"]
            with open(out_dir / "metadata.jsonl", "w") as handle:
                for split, n in (("train", n_train), ("test", n_test)):
                    for i in range(n):
                        label = times[i % 4]
                        handle.write(json.dumps({"file_name": f"{split}/{i:03d}.png", "label": label,
                                                 "text": f"a valley at {label}"}) + "\n")
        return out_dir

    module.write_synthetic = write_synthetic
    return module


class FileServer:
    """An HTTP server on 127.0.0.1 (ephemeral port) serving in-memory files, with Range support.

    files: url path -> bytes. `cut_after[path] = n` makes the next response for path stop after n
    bytes of the body (announcing the full length), once. `no_range` ignores Range headers;
    `range_shift` answers a Range request with the part that starts that many bytes off, once.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.no_range = False
        self.range_shift = 0
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if range_header and not server.no_range:
                    start = int(range_header.split("=")[1].split("-")[0]) + server.range_shift
                    server.range_shift = 0
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                cut = server.cut_after.pop(self.path, None)
                self.wfile.write(payload if cut is None else payload[:cut])
                self.wfile.flush()
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
