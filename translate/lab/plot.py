"""The lab's picture: G's samples over D's landscape at several moments of training.

One panel per snapshot, left to right. The background is D's raw output on a grid of points (as in
the lecture demo of seed 001, where D is drawn as an evaluation function over x): its colour scale is
per panel, from the 2nd to the 98th percentile, because the logits of different objectives and moments
live on different scales; bright = D calls it real. Black dots are G's samples, white rings the real
modes with radius 3 std (the high-quality radius of the metrics).
"""

from __future__ import annotations

import os
from typing import Sequence

from translate.lab.mixtures import GaussianMixture
from translate.lab.train import Snapshot


def plot_snapshots(
    snapshots: Sequence[Snapshot],
    mixture: GaussianMixture,
    path: str | os.PathLike,
    *,
    title: str = "",
    panel_size: float = 2.6,
    dpi: int = 90,
) -> None:
    """Write a PNG with one panel per snapshot to `path`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    if not snapshots:
        raise ValueError("nothing to plot: no snapshots were taken")
    n = len(snapshots)
    fig, axes = plt.subplots(1, n, figsize=(panel_size * n, panel_size + 0.35), squeeze=False)
    extent = mixture.extent
    for ax, snap in zip(axes[0], snapshots):
        values = snap.landscape.float()
        lo, hi = (float(v) for v in values.flatten().quantile(values.new_tensor([0.02, 0.98])))
        if hi <= lo:
            hi = lo + 1e-6
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
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
