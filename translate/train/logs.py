"""What a run tells its user: metrics.jsonl, TensorBoard scalars and images, sample grids, a progress bar.

Only rank 0 logs. metrics.jsonl holds one JSON object per logged step with at least `step`, `epoch`,
the losses averaged since the previous line, and `sec_per_step`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch


class RunningMeans:
    """Averages of scalars since the last `pop()`, fed with detached tensors without forcing a sync
    per step."""

    def __init__(self):
        self._sums: dict[str, torch.Tensor | float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, values: dict) -> None:
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float()
            self._sums[key] = self._sums[key] + value
            self._counts[key] += 1

    def pop(self) -> dict[str, float]:
        out = {k: float(v) / self._counts[k] for k, v in self._sums.items()}
        self._sums.clear()
        self._counts.clear()
        return out


class MetricsLog:
    """Appends one JSON line per record; a resumed run keeps the lines up to its checkpoint's step."""

    def __init__(self, path: Path, keep_through_step: int = 0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if self.path.exists():
            # Lines past the step a run resumes from describe steps that will be trained again.
            # A line that is not a record (damaged by a crash or by hand: bytes that are not UTF-8, a JSON
            # list) is dropped like a half-written one.
            for line in self.path.read_bytes().decode("utf-8", "replace").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                step = record.get("step", 0) if isinstance(record, dict) else None
                if isinstance(step, (int, float)) and step <= keep_through_step:
                    kept.append(line)
        # Atomically: a run resumed after a crash is the one whose history a full disk must not cut.
        from translate.train.checkpoint import atomic_write_bytes

        atomic_write_bytes("".join(line + "\n" for line in kept).encode(), self.path)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoard:
    """A thin wrapper that imports TensorBoard's writer lazily and can be switched off."""

    def __init__(self, log_dir: Path | None, resumed_at: int = 0):
        self._writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            # A resumed run trains the steps after its checkpoint again: purge_step hides what the
            # interrupted run had logged for them, as metrics.jsonl drops those lines. A fresh start
            # (in a folder whose earlier run crashed before its first checkpoint) hides all of it.
            self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=resumed_at + 1)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self._writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._writer.add_scalar(key, value, step)

    def image(self, tag: str, grid_chw: torch.Tensor, step: int) -> None:
        if self._writer is not None:
            self._writer.add_image(tag, grid_chw, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()


def image_grid(columns: list[tuple[str, torch.Tensor]], max_rows: int = 4) -> torch.Tensor:
    """Rows of samples, one column per named image batch (e.g. input | output | target), as a
    (3, H, W) float tensor in [0, 1]. Batches of different sizes are resized to the first's size."""
    rows = min(max_rows, min(t.shape[0] for _, t in columns))
    h, w = columns[0][1].shape[-2:]
    tiles = []
    for r in range(rows):
        row = []
        for _, t in columns:
            img = t[r : r + 1].detach().float().cpu()
            if img.shape[1] == 1:
                img = img.expand(-1, 3, -1, -1)
            if img.shape[-2:] != (h, w):
                img = torch.nn.functional.interpolate(img, size=(h, w), mode="bilinear", align_corners=False)
            row.append(img[0])
        tiles.append(torch.cat(row, dim=2))
    grid = torch.cat(tiles, dim=1)
    return ((grid.clamp(-1, 1) + 1) / 2).contiguous()


def save_png(chw01: torch.Tensor, path: Path) -> None:
    from PIL import Image

    arr = (chw01.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


class Progress:
    """A tqdm bar on stderr with it/s, images/s, ETA and the latest losses; plain lines when stderr
    is not a terminal (CI logs), at most one every `plain_every_s` seconds.

    The plain lines' rate is the recent one, smoothed across lines (as tqdm smooths its bar), not the
    average since the start: on a shared machine the speed changes with the load, and after a pause an
    average would predict the wrong end for the rest of the run."""

    #: weight of the newest interval in the smoothed rate (tqdm's default smoothing)
    SMOOTHING = 0.3

    #: a run whose remaining time, measured over this much of its training, exceeds LONG_RUN_S shows
    #: `long_run_hint` once
    HINT_AFTER_S = 60.0
    LONG_RUN_S = 24 * 3600.0

    def __init__(self, total: int, initial: int, batch_images: float, enabled: bool = True, plain_every_s: float = 30.0,
                 long_run_hint: str | None = None):
        self.total, self.batch_images = total, batch_images
        self.enabled = enabled
        self._hint = long_run_hint
        self._bar = None
        self._last_plain = 0.0
        self._plain_every_s = plain_every_s
        self._start_step, self._start_time = initial, time.perf_counter()
        self._step = initial
        self._mark_step, self._mark_time = initial, self._start_time  # the previous plain line
        self._rate: float | None = None  # smoothed steps per second across plain lines
        self._losses: dict[str, float] = {}  # the latest logged losses
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True, file=sys.stderr)

    def update(self, step: int, losses: dict[str, float] | None = None) -> None:
        if not self.enabled:
            return
        done = step - self._step
        self._step = step
        elapsed = time.perf_counter() - self._start_time
        rate = (step - self._start_step) / elapsed if elapsed > 0 else 0.0
        if losses:
            self._losses = losses  # shown until the next logged step brings new ones
        if self._hint and elapsed >= self.HINT_AFTER_S and rate > 0 and (self.total - step) / rate > self.LONG_RUN_S:
            hint = f"at this speed the run needs {_format_days(((self.total - step) / rate))} more; {self._hint}"
            self._hint = None
            if self._bar is not None:
                self._bar.write(hint, file=sys.stderr)
            else:
                print(hint, file=sys.stderr, flush=True)
        if self._bar is not None:
            rate = self._bar.format_dict.get("rate") or rate  # tqdm's smoothed rate, once it has one
            post = {"img/s": f"{rate * self.batch_images:.2f}"}
            post.update({k: f"{v:.3f}" for k, v in list(self._losses.items())[:6]})
            self._bar.set_postfix(post, refresh=False)
            self._bar.update(done)
        elif time.perf_counter() - self._last_plain >= self._plain_every_s or step == self.total:
            now = self._last_plain = time.perf_counter()
            if now > self._mark_time and step > self._mark_step:
                # The interval from the start holds the first step's warm-up: it only sets the mark.
                if self._mark_step != self._start_step:
                    recent = (step - self._mark_step) / (now - self._mark_time)
                    self._rate = recent if self._rate is None else (
                        self.SMOOTHING * recent + (1 - self.SMOOTHING) * self._rate)
                self._mark_step, self._mark_time = step, now
            # Until a second line there is no rate without the warm-up in it: no ETA yet.
            rate, eta = (rate, float("nan")) if self._rate is None else (
                self._rate, (self.total - step) / self._rate)
            text = " ".join(f"{k}={v:.3f}" for k, v in list(self._losses.items())[:6])
            print(
                f"step {step}/{self.total}  {rate:.2f} it/s  {rate * self.batch_images:.2f} img/s  "
                f"ETA {_format_seconds(eta)}  {text}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _format_days(s: float) -> str:
    days = s / 86400
    return f"about {days:.0f} days" if days >= 2 else f"about {s / 3600:.0f} hours"


def _format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
