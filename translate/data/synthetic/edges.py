"""Edge maps of landscapes with kornia's Canny detector (the A side of synth-edges2landscape)."""

from __future__ import annotations

import cv2
import numpy as np

# kornia.filters.canny's own defaults, stated here because the data set's meaning depends on them.
CANNY_LOW = 0.1
CANNY_HIGH = 0.2
CANNY_KERNEL = 5
CANNY_SIGMA = 1.0


def canny_edges(photo: np.ndarray) -> np.ndarray:
    """Canny edges of an (H, W, 3) uint8 RGB photo: (H, W) bool, True on an edge.

    Exactly `kornia.filters.canny(photo / 255, CANNY_LOW, CANNY_HIGH, CANNY_KERNEL, (CANNY_SIGMA,) * 2)`
    in float32. kornia's hysteresis grows edges one pixel per round until nothing changes, which takes
    hundreds of rounds on a long horizon line; here kornia computes the thresholded non-maximum
    suppression and the hysteresis is done in one pass with connected components: a weak pixel is kept
    when an 8-connected chain of weak pixels joins it to a strong one, the same fixed point.
    """
    import torch  # imported here: the rest of the synthetic sets need only numpy and OpenCV
    import kornia

    image = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        _, thresholded = kornia.filters.canny(
            image, CANNY_LOW, CANNY_HIGH, (CANNY_KERNEL, CANNY_KERNEL), (CANNY_SIGMA, CANNY_SIGMA),
            hysteresis=False,
        )
    levels = thresholded[0, 0].numpy()  # 0: none, 0.5: weak, 1: strong
    candidates = (levels > 0).astype(np.uint8)
    count, labels = cv2.connectedComponents(candidates, connectivity=8)
    has_strong = np.zeros(count, bool)
    has_strong[labels[levels == 1.0]] = True
    has_strong[0] = False  # the background
    return has_strong[labels]


def edge_image(edges: np.ndarray) -> np.ndarray:
    """An edge map drawn as edges2shoes draws it: black lines on white, (H, W, 3) uint8."""
    gray = np.where(edges, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)
