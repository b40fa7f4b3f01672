"""A photo repainted in the manner of Van Gogh: a deterministic, mostly local function of the photo.

`render_painting(photo)` takes an 8-bit RGB photo and returns the painting. Nothing but the photo goes in,
so the translation photo -> painting is a function a network can learn, and a painting can be recomputed
from its photo exactly. Every ingredient is local (a neighbourhood of a few dozen pixels at 256 px):

1. Abstraction: an edge-preserving (bilateral) filter removes grain and fine detail.
2. Palette: each colour moves towards Van Gogh's palette (cobalt and ultramarine blues, chrome and lemon
   yellows, ochres, viridian and sap greens, a violet, dark Prussian blue), by a soft nearest-colour rule
   in CIELAB, so skies turn to blues, fields to yellows and greens, shadows to Prussian blue.
3. Brush strokes: a flow field follows the picture's structure (along edges, from the structure tensor, and
   along the level lines of the heavily blurred brightness, which circle the sun, moon, stars and clouds:
   the swirls of The Starry Night) with a wave added where the picture is flat. Line integral convolution
   along it smears the photo's own visible texture (grass, foliage, clouds, rock, ripples: a band-pass of
   its brightness) into strokes, so the stroke pattern is a function of what the photo shows; where the
   photo is flat the strokes are faint. Strokes alternate between the two nearest palette colours
   ("broken colour") and are lit as raised paint (impasto).
4. Outlines: thick dark blue contours along the main edges.
5. Halos: concentric glowing rings around bright lights (stars, sun, moon, windows).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

# Van Gogh's palette as RGB in [0, 1] (approximate pigments of his Arles and Saint-Remy paintings).
PALETTE: dict[str, tuple[float, float, float]] = {
    "ivory black blue": (0.05, 0.06, 0.13),
    "prussian blue": (0.08, 0.13, 0.28),
    "ultramarine": (0.14, 0.22, 0.56),
    "cobalt blue": (0.20, 0.38, 0.72),
    "cerulean": (0.42, 0.62, 0.84),
    "pale blue": (0.72, 0.83, 0.88),
    "lead white": (0.96, 0.94, 0.82),
    "lemon yellow": (0.99, 0.91, 0.38),
    "chrome yellow": (0.96, 0.74, 0.10),
    "orange": (0.90, 0.48, 0.12),
    "yellow ochre": (0.76, 0.60, 0.26),
    "red ochre": (0.58, 0.24, 0.14),
    "rose": (0.90, 0.60, 0.62),
    "violet": (0.44, 0.36, 0.62),
    "viridian": (0.10, 0.42, 0.36),
    "sap green": (0.32, 0.56, 0.20),
    "yellow green": (0.64, 0.72, 0.26),
    "cypress green": (0.07, 0.20, 0.13),
}

OUTLINE_COLOR = (0.06, 0.09, 0.22)
WORKING_SIZE = 256  # paintings smaller than this are painted at this size and shrunk
HALO_COLOR = (1.0, 0.92, 0.52)


# Strokes smear the photo's texture between these two blur scales (px at 256 px). Finer than this is film
# grain, which a 128 px copy of the photo hardly keeps: strokes drawn from it (format version 1) could
# not be predicted from what a network sees, so every translation scored below the photo itself in SSIM.
STROKE_BAND = (1.5, 5.0)
# Texture strengths below these floors (of the band, of the streaked band) count as flat: faint strokes.
STROKE_FLOOR = 0.01
STREAK_FLOOR = 0.3
_LUT_BITS = 6  # the palette rule is tabulated on a 64^3 grid of colours


@functools.lru_cache(maxsize=1)
def _palette_table() -> tuple[np.ndarray, np.ndarray]:
    """For every colour of a 64^3 grid: the soft nearest palette colour (RGB) and the second nearest one.

    Nearness is distance in CIELAB, with lightness counting a little less than hue and chroma: a painter
    keeps the colour of a thing more than its exact value. "Soft": a Gaussian-weighted mix of the palette
    colours around the nearest one, so the mapping is posterised but continuous.
    """
    rgb = np.array(list(PALETTE.values()), np.float32)
    lab = cv2.cvtColor(rgb[None], cv2.COLOR_RGB2Lab)[0]
    levels = (np.arange(1 << _LUT_BITS, dtype=np.float32) + 0.5) / (1 << _LUT_BITS)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    grid_lab = cv2.cvtColor(grid[None], cv2.COLOR_RGB2Lab)[0]
    weights = np.float32([0.8, 1.0, 1.0])
    distance = (((grid_lab[:, None, :] - lab[None, :, :]) * weights) ** 2).sum(-1)
    order = np.argsort(distance, axis=1)
    soft = np.exp(-(distance - distance.min(1, keepdims=True)) / 60.0)
    soft /= soft.sum(1, keepdims=True)
    first = np.ascontiguousarray((soft @ rgb).T, dtype=np.float32)  # (3, N)
    second = np.ascontiguousarray(rgb[order[:, 1]].T)
    first.setflags(write=False)
    second.setflags(write=False)
    return first, second


def _palette_colors(planes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Soft nearest and second nearest palette colours, (3, H, W) each, of an image given as R, G, B planes."""
    first, second = _palette_table()
    levels = 1 << _LUT_BITS
    q = [np.clip(plane * levels, 0, levels - 1).astype(np.int32) for plane in planes]
    index = (q[0] * levels + q[1]) * levels + q[2]
    return first[:, index], second[:, index]


@functools.lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def _gauss(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


def _flow(lum: np.ndarray, px: float) -> np.ndarray:
    """Stroke directions: a unit vector field (H, W, 2); an orientation only (v and -v are the same)."""
    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)
    # Orientations are added in the doubled-angle representation (cos 2a, sin 2a), where v and -v agree.
    # The structure tensor's dominant direction is across edges; strokes run along them, which is a sign
    # flip in that representation.
    sigma = 3.0 * px
    jxx, jyy, jxy = _gauss(gx * gx, sigma), _gauss(gy * gy, sigma), _gauss(gx * gy, sigma)
    edge_c, edge_s = jyy - jxx, -2.0 * jxy
    edge_strength = np.sqrt(edge_c * edge_c + edge_s * edge_s)
    edge_weight = np.minimum(edge_strength / 0.02, 1.0) / (edge_strength + 1e-6)
    # Level lines of the blurred brightness: they circle bright lights and clouds (the swirls).
    big = _gauss(lum, 9.0 * px)
    bx = cv2.Sobel(big, cv2.CV_32F, 1, 0, ksize=3)
    by = cv2.Sobel(big, cv2.CV_32F, 0, 1, ksize=3)
    level_c, level_s = by * by - bx * bx, -2.0 * bx * by
    level_strength = np.sqrt(level_c * level_c + level_s * level_s)
    level_weight = 0.7 * np.minimum(level_strength / 2e-4, 1.0) / (level_strength + 1e-8)
    field_c = edge_weight * edge_c + level_weight * level_c + 0.12  # a weak horizontal default
    field_s = edge_weight * edge_s + level_weight * level_s
    # Where the picture is flat the strokes wave: the angle turns with the blurred brightness.
    flatness = 1.0 - np.minimum(edge_strength / 0.02, 1.0)
    angle = 0.5 * np.arctan2(field_s, field_c) + 0.5 * flatness * np.sin(big * 40.0)
    doubled_c, doubled_s = _gauss(np.cos(2 * angle), 1.5 * px), _gauss(np.sin(2 * angle), 1.5 * px)
    half = 0.5 * np.arctan2(doubled_s, doubled_c)
    return cv2.merge([np.cos(half), np.sin(half)])


def _line_integral(direction: np.ndarray, sources: np.ndarray, steps: int, step: float) -> np.ndarray:
    """Line integral convolution: average `sources` (H, W, C) along the streamlines of `direction`.

    Each pixel walks `steps` steps of `step` px both ways along the orientation field, keeping its
    direction of travel (a step never reverses: the sampled orientation is flipped to agree with the
    last one), and averages what it meets with a tent weight.
    """
    xs, ys = _pixel_grid(*direction.shape[:2])
    # Direction samples: nearest neighbour, since interpolating between v and -v would cancel them.
    filler = np.zeros_like(xs)
    padded = cv2.merge([direction[..., 0], direction[..., 1], filler, filler])  # 4 channels remap fastest
    total = sources.copy()
    weight_sum = 1.0
    one = np.float32(1.0)
    for sign in (one, -one):
        x, y = xs.copy(), ys.copy()
        vx, vy = sign * direction[..., 0], sign * direction[..., 1]
        for k in range(1, steps + 1):
            x += step * vx
            y += step * vy
            nx, ny, _, _ = cv2.split(cv2.remap(padded, x, y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT))
            flip = np.copysign(one, nx * vx + ny * vy)
            vx, vy = nx * flip, ny * flip
            weight = np.float32(1.0 - k / (steps + 1))
            total += weight * cv2.remap(sources, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            weight_sum += weight
    return total / np.float32(weight_sum)


def _sobel_relief(relief: np.ndarray) -> np.ndarray:
    """Brightness of a raised paint surface lit from the upper left."""
    dx = cv2.Sobel(relief, cv2.CV_32F, 1, 0, ksize=3)
    dy = cv2.Sobel(relief, cv2.CV_32F, 0, 1, ksize=3)
    return -(dx + dy) / 8.0


def render_painting(photo: np.ndarray) -> np.ndarray:
    """The photo repainted as a Van Gogh-like painting: (H, W, 3) uint8 RGB in, the same shape out."""
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"render_painting expects an (H, W, 3) uint8 RGB photo, got {photo.dtype} {photo.shape}")
    height, width = photo.shape[:2]
    if min(height, width) < WORKING_SIZE:
        # Strokes, outlines and halos have their sizes at 256 px; a smaller painting is the painting of
        # the photo enlarged to 256 px, shrunk, so that a scene's painting looks the same at any size.
        scale = WORKING_SIZE / min(height, width)
        large_size = (max(round(width * scale), WORKING_SIZE), max(round(height * scale), WORKING_SIZE))
        large = cv2.resize(photo, large_size, interpolation=cv2.INTER_CUBIC)
        return cv2.resize(render_painting(large), (width, height), interpolation=cv2.INTER_AREA)
    px = min(height, width) / 256.0
    image = photo.astype(np.float32) / 255.0
    lum_photo = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)

    # 1. Abstraction.
    base = cv2.bilateralFilter(image, d=int(round(5 * px)) | 1, sigmaColor=0.15, sigmaSpace=3.0 * px)
    lum = cv2.cvtColor(base, cv2.COLOR_RGB2GRAY)

    # 2. Palette, after lifting the shadows (his night skies are luminous blues, not black) and boosting
    # saturation. (Colours are handled as separate R, G, B planes from here on: numpy combines planes
    # much faster than interleaved (H, W, 3) pixels.)
    lifted = cv2.pow(base, 0.7)
    lifted_lum = cv2.cvtColor(lifted, cv2.COLOR_RGB2GRAY)
    boosted = [lifted_lum + 1.5 * (plane - lifted_lum) for plane in cv2.split(lifted)]
    first, second = _palette_colors(boosted)

    # 3. Strokes: the photo's visible texture (a band of 1.5-5 px at 256 px: grass, foliage, clouds, rock,
    # ripples; above the film grain), normalised to unit strength where the photo is textured and left
    # faint where it is flat, streaked along the flow with the colour.
    band = _gauss(lum_photo, STROKE_BAND[0] * px) - _gauss(lum_photo, STROKE_BAND[1] * px)
    dabs = band / np.sqrt(_gauss(band * band, 6.0 * px) + STROKE_FLOOR**2)
    direction = _flow(lum, px)
    sources = cv2.merge([dabs, first[0], first[1], first[2]])
    streaked = cv2.split(_line_integral(direction, sources, steps=max(int(round(6 * px)), 2), step=1.6 * px))
    texture = streaked[0]
    texture = texture - _gauss(texture, 6.0 * px)
    texture = texture / np.sqrt(_gauss(texture * texture, 6.0 * px) + STREAK_FLOOR**2)
    # Broken colour: the brightest strokes take the second nearest palette colour.
    broken = 0.55 / (1.0 + np.exp(-3.0 * (texture - 0.5)))
    # Value follows the strokes, and their relief is lit from the upper left (impasto).
    relief = _gauss(np.tanh(texture), 0.8 * px)
    light = (0.92 + 0.1 * np.tanh(texture)) * (1.0 + 0.25 * _sobel_relief(relief))

    # 4. Outlines along the main edges.
    smooth = _gauss(lum, 1.2 * px)
    edges = cv2.Canny(np.clip(smooth * 255.0 + 0.5, 0, 255).astype(np.uint8), 40, 90, L2gradient=True)
    thick = cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    outline = _gauss(thick.astype(np.float32) / 255.0, 0.8 * px) * np.clip(0.85 + 0.2 * texture, 0.4, 1.0)
    outline = np.minimum(outline * 1.2, 0.85)

    # 5. Halos around small bright lights (stars, sun, moon, lit windows).
    width = int(round(31 * px)) | 1
    tophat = lum_photo - cv2.morphologyEx(lum_photo, cv2.MORPH_OPEN,
                                          cv2.getStructuringElement(cv2.MORPH_RECT, (width, width)))
    warm = image[..., 0] - image[..., 2] > 0.3  # lamp-lit windows
    lights = ((tophat > 0.45) & (lum_photo > 0.86)) | (warm & (tophat > 0.25) & (lum_photo > 0.55))
    halo = None
    if lights.any():
        # Each point takes the distance to the nearest light and that light's strength; brighter lights
        # get wider halos.
        distance, labels = cv2.distanceTransformWithLabels((~lights).astype(np.uint8), cv2.DIST_L2, 3,
                                                           labelType=cv2.DIST_LABEL_PIXEL)
        strength = np.zeros(labels.max() + 1, np.float32)
        strength[labels[lights]] = tophat[lights]
        radius = (3.0 + 10.0 * np.clip(strength[labels] - 0.45, 0.0, 0.5)) * px
        rings = 0.6 + 0.4 * np.cos(np.float32(2 * np.pi / (4.0 * px)) * distance)
        halo = np.minimum(np.exp(-distance / radius) * rings, 1.0) * 0.85

    planes = []
    for c in range(3):
        plane = (streaked[1 + c] * (1 - broken) + second[c] * broken) * light
        plane = plane * (1 - outline) + OUTLINE_COLOR[c] * outline
        if halo is not None:
            plane = plane * (1 - halo) + HALO_COLOR[c] * halo
        planes.append(np.clip(plane * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return cv2.merge(planes)
