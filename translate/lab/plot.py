"""The lab's picture: G's samples over D's landscape at several moments of training.

One panel per snapshot, left to right; one row per run. The background is D's raw output on a grid of
points (as in the lecture demo of seed 001, where D is drawn as an evaluation function over x): its
colour scale is per panel, from the 2nd to the 98th percentile, because the logits of different
objectives and moments live on different scales; bright = D calls it real. Black dots are G's
samples, white rings the real modes with radius 3 std (the high-quality radius of the metrics; drawn
at least 2% of the view wide so that the ring8 modes stay visible).
"""

from __future__ import annotations

import os
from typing import Sequence

from translate.lab.mixtures import GaussianMixture
from translate.lab.train import Snapshot


def _draw_panel(ax, snap: Snapshot, mixture: GaussianMixture) -> None:
    from matplotlib.patches import Circle

    extent = mixture.extent
    values = snap.landscape.float()
    lo, hi = (float(v) for v in values.flatten().quantile(values.new_tensor([0.02, 0.98])))
    if not hi > lo:  # a flat (or non-finite) landscape still gets a valid colour scale
        hi = lo + 1e-6 if lo == lo else 1.0
        lo = lo if lo == lo else 0.0
    ax.imshow(
        values.numpy(),
        origin="lower",
        extent=(-extent, extent, -extent, extent),
        cmap="magma",
        vmin=lo,
        vmax=hi,
        interpolation="bilinear",
    )
    points = snap.samples.float().clamp(-2 * extent, 2 * extent).numpy()
    ax.scatter(points[:, 0], points[:, 1], s=1.5, c="black", alpha=0.5, linewidths=0)
    for mx, my in mixture.means.tolist():
        ax.add_patch(Circle((mx, my), max(3 * mixture.std, 0.02 * extent), fill=False, ec="white", lw=0.6))
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"step {snap.step}", fontsize=9)


def plot_runs(
    rows: Sequence[tuple[str, Sequence[Snapshot]]],
    mixture: GaussianMixture,
    path: str | os.PathLike,
    *,
    panel_size: float = 2.4,
    dpi: int = 80,
) -> None:
    """Write a PNG with one row of panels per (label, snapshots) to `path`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not rows or not all(snaps for _, snaps in rows):
        raise ValueError("nothing to plot: no snapshots were taken")
    columns = max(len(snaps) for _, snaps in rows)
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(panel_size * columns, (panel_size + 0.3) * len(rows)), squeeze=False
    )
    for r, (label, snaps) in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            if c < len(snaps):
                _draw_panel(ax, snaps[c], mixture)
            else:
                ax.axis("off")
        if label:
            axes[r][0].set_ylabel(label, fontsize=9)
    fig.tight_layout()
    _save_small_png(fig, path, dpi)
    plt.close(fig)


def _save_small_png(fig, path, dpi: int) -> None:
    """Save as a 256-colour palette PNG: the smooth landscapes make full-colour PNGs ~4x larger."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, format="PNG", optimize=True)


def plot_snapshots(
    snapshots: Sequence[Snapshot],
    mixture: GaussianMixture,
    path: str | os.PathLike,
    *,
    title: str = "",
    panel_size: float = 2.4,
    dpi: int = 80,
) -> None:
    """Write a PNG with one row of panels, one per snapshot, to `path`."""
    plot_runs([(title, snapshots)], mixture, path, panel_size=panel_size, dpi=dpi)
