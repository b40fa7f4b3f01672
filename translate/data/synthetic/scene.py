"""Landscape scenes: a random description of one, the light it is seen in, and its rendering as a photo.

A `Scene` is pure geometry and colour in picture coordinates (x and y in [0, 1], y pointing down), so one
scene renders the same at any size. Everything random about a scene comes from its integer seed: the
description through `sample_scene(seed)`, and the textures and grain of its rendering through generators
seeded by (seed, a fixed key per texture). Rendering a scene twice gives byte-identical pictures.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

RGB = tuple[float, float, float]

# Keys that make the texture generators of one scene independent of each other (any distinct numbers do).
_GRAIN, _CLOUD_NOISE, _ROCK, _GRASS, _WATER, _FOLIAGE, _MOON = range(101, 108)


# ---------------------------------------------------------------------------------------------------------
# The description


@dataclass(frozen=True)
class Profile:
    """A line y(x) across the picture: `base` minus a sum of waves (so larger waves reach higher).

    `ridged` waves are 1 - |sin|, whose maxima are cusps: sharp mountain peaks instead of rolling hills.
    """

    base: float
    amplitudes: tuple[float, ...]
    frequencies: tuple[float, ...]
    phases: tuple[float, ...]
    ridged: bool = False

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        height = np.zeros_like(x)
        for amplitude, frequency, phase in zip(self.amplitudes, self.frequencies, self.phases):
            if self.ridged:
                height += amplitude * (1.0 - np.abs(np.sin(np.pi * frequency * x + phase)))
            else:
                height += amplitude * np.sin(2.0 * np.pi * frequency * x + phase)
        return self.base - height


@dataclass(frozen=True)
class Light:
    """The light a scene is seen in: sky colours, sun or moon, and how land, clouds and windows respond."""

    name: str
    zenith: RGB
    horizon: RGB
    body: str  # "sun", "moon" or "none"
    body_xy: tuple[float, float]
    body_radius: float
    body_color: RGB
    glow: float  # how strongly the sky brightens around the sun or moon
    ambient: RGB  # multiplies the colours of land, water and buildings
    direct: float  # strength of the directional light on slopes, trees and clouds
    cloud: RGB  # lit side of clouds
    cloud_shade: RGB  # shadow side of clouds
    stars: float  # 0..1
    windows: float  # 0..1: how brightly house windows glow
    haze: float  # atmospheric perspective: how much far mountains take the horizon colour


@dataclass(frozen=True)
class Mountains:
    profile: Profile
    depth: float  # 0 near .. 1 far; far ranges fade into the haze
    color: RGB
    snow: float  # depth of snow below the peaks, in picture units (0: none)


@dataclass(frozen=True)
class Hill:
    profile: Profile
    color_top: RGB
    color_bottom: RGB
    texture: str  # "grass", "wheat" (perspective furrows) or "meadow" (flowers)
    vanishing_x: float  # where the wheat furrows converge


@dataclass(frozen=True)
class Tree:
    kind: str  # "cypress" or "round"
    x: float
    base: float
    height: float
    width: float
    color: RGB
    hill: int  # drawn right after this hill, so that nearer hills hide it


@dataclass(frozen=True)
class House:
    x: float
    base: float
    width: float
    height: float
    roof: float
    wall: RGB
    roof_color: RGB
    steeple: bool
    hill: int


@dataclass(frozen=True)
class Cloud:
    puffs: tuple[tuple[float, float, float, float], ...]  # (x, y, radius x, radius y) ellipses


@dataclass(frozen=True)
class Scene:
    seed: int
    horizon: float
    mountains: tuple[Mountains, ...]
    water: float | None  # a lake from the horizon down to this shore line, or None
    hills: tuple[Hill, ...]  # back to front; the last one reaches the bottom of the picture
    trees: tuple[Tree, ...]
    houses: tuple[House, ...]
    clouds: tuple[Cloud, ...]
    stars: tuple[tuple[float, float, float], ...]  # (x, y, brightness)
    light: Light

    def contents(self) -> list[str]:
        """Plain words for what the scene shows (used by captions)."""
        words = []
        if self.mountains:
            words.append("snowy mountains" if any(m.snow > 0 for m in self.mountains) else "mountains")
        if self.water is not None:
            words.append("a lake")
        textures = {hill.texture for hill in self.hills}
        if "wheat" in textures:
            words.append("wheat fields")
        if "meadow" in textures:
            words.append("a meadow")
        if "grass" in textures and len(words) < 2:
            words.append("green hills")
        if any(house.steeple for house in self.houses):
            words.append("a village with a church")
        elif self.houses:
            words.append("a village")
        if any(tree.kind == "cypress" for tree in self.trees):
            words.append("cypress trees")
        elif self.trees:
            words.append("trees")
        if self.clouds:
            words.append("clouds")
        return words


# ---------------------------------------------------------------------------------------------------------
# Lights

TIMES_OF_DAY = ("dawn", "noon", "dusk", "night")


def body_position(label: str, horizon: float) -> tuple[float, float]:
    """Where the sun or moon stands at a time of day: dawn low in the east (left), dusk low in the west."""
    if label == "dawn":
        return 0.2, horizon - 0.1
    if label == "dusk":
        return 0.8, horizon - 0.07
    if label == "noon":
        return 0.5, 0.11
    if label == "night":
        return 0.74, 0.16
    return 0.5, 0.1


def make_light(label: str, horizon: float, body_xy: tuple[float, float] | None = None) -> Light:
    """The light at a time of day (`TIMES_OF_DAY`), or "daylight": neutral overcast light with no sun."""
    xy = body_xy if body_xy is not None else body_position(label, horizon)
    if label == "daylight":
        return Light(
            "daylight", zenith=(0.50, 0.64, 0.82), horizon=(0.80, 0.85, 0.90), body="none", body_xy=xy,
            body_radius=0.0, body_color=(1.0, 1.0, 1.0), glow=0.0, ambient=(0.95, 0.95, 0.95), direct=0.05,
            cloud=(0.94, 0.94, 0.95), cloud_shade=(0.72, 0.74, 0.78), stars=0.0, windows=0.0, haze=0.55,
        )
    if label == "noon":
        return Light(
            "noon", zenith=(0.08, 0.33, 0.82), horizon=(0.55, 0.76, 0.96), body="sun", body_xy=xy,
            body_radius=0.042, body_color=(1.0, 0.98, 0.88), glow=0.45, ambient=(1.08, 1.05, 0.96), direct=0.35,
            cloud=(1.0, 1.0, 1.0), cloud_shade=(0.72, 0.76, 0.86), stars=0.0, windows=0.0, haze=0.35,
        )
    if label == "dawn":
        return Light(
            "dawn", zenith=(0.36, 0.42, 0.66), horizon=(1.0, 0.74, 0.64), body="sun", body_xy=xy,
            body_radius=0.05, body_color=(1.0, 0.88, 0.70), glow=0.8, ambient=(0.80, 0.72, 0.80), direct=0.3,
            cloud=(1.0, 0.76, 0.74), cloud_shade=(0.55, 0.50, 0.64), stars=0.0, windows=0.15, haze=0.75,
        )
    if label == "dusk":
        return Light(
            "dusk", zenith=(0.22, 0.13, 0.36), horizon=(1.0, 0.42, 0.10), body="sun", body_xy=xy,
            body_radius=0.06, body_color=(1.0, 0.56, 0.18), glow=1.0, ambient=(0.62, 0.40, 0.32), direct=0.35,
            cloud=(0.96, 0.44, 0.28), cloud_shade=(0.32, 0.18, 0.30), stars=0.1, windows=0.7, haze=0.6,
        )
    if label == "night":
        return Light(
            "night", zenith=(0.02, 0.04, 0.13), horizon=(0.09, 0.16, 0.32), body="moon", body_xy=xy,
            body_radius=0.035, body_color=(0.98, 0.96, 0.84), glow=0.35, ambient=(0.17, 0.21, 0.36), direct=0.12,
            cloud=(0.24, 0.27, 0.40), cloud_shade=(0.07, 0.08, 0.15), stars=1.0, windows=1.0, haze=0.4,
        )
    raise ValueError(f"unknown light {label!r}")


def _jitter_light(light: Light, rng: np.random.Generator, amount: float) -> Light:
    """The same time of day with slightly different colours, so photos are not all graded alike."""

    def shift(color: RGB) -> RGB:
        delta = rng.normal(0.0, amount, 3) + rng.normal(0.0, amount)
        return tuple(float(np.clip(c + d, 0.0, 1.0)) for c, d in zip(color, delta))

    return dataclasses.replace(
        light, zenith=shift(light.zenith), horizon=shift(light.horizon), cloud=shift(light.cloud),
        ambient=tuple(float(a * f) for a, f in zip(light.ambient, rng.uniform(0.92, 1.08, 3))),
    )


# ---------------------------------------------------------------------------------------------------------
# Sampling a scene


def _color(rng: np.random.Generator, base: RGB, spread: float) -> RGB:
    return tuple(float(np.clip(c + d, 0.0, 1.0)) for c, d in zip(base, rng.normal(0.0, spread, 3)))


def _profile(rng, base, n_waves, amplitude, frequency, ridged=False, decay=0.55) -> Profile:
    k = np.arange(n_waves)
    return Profile(
        base=float(base),
        amplitudes=tuple(float(a) for a in amplitude * decay**k * rng.uniform(0.6, 1.0, n_waves)),
        frequencies=tuple(float(f) for f in frequency * 2.0**k * rng.uniform(0.8, 1.25, n_waves)),
        phases=tuple(float(p) for p in rng.uniform(0.0, 2.0 * np.pi, n_waves)),
        ridged=ridged,
    )


def sample_scene(seed: int, light: str | None = None) -> Scene:
    """A random landscape for `seed`. `light` picks the time of day; by default it is drawn too.

    The description never depends on the picture size, so the same seed renders the same landscape at
    any size.
    """
    rng = np.random.default_rng(seed)
    horizon = float(rng.uniform(0.46, 0.62))

    mountains = []
    n_ranges = int(rng.choice([0, 1, 2, 3], p=[0.12, 0.3, 0.38, 0.2]))
    for i in range(n_ranges):
        depth = 1.0 - i / max(n_ranges - 1, 1) if n_ranges > 1 else 0.5
        height = rng.uniform(0.1, 0.3) * (1.0 - 0.35 * depth)
        mountains.append(Mountains(
            profile=_profile(rng, horizon + 0.02, 4, height, rng.uniform(1.0, 2.5), ridged=True, decay=0.45),
            depth=float(depth),
            color=_color(rng, [(0.42, 0.40, 0.44), (0.45, 0.38, 0.30), (0.34, 0.38, 0.46)][i % 3], 0.05),
            snow=float(rng.uniform(0.02, 0.07)) if rng.random() < 0.35 and height > 0.14 else 0.0,
        ))

    water = float(horizon + rng.uniform(0.1, 0.22)) if rng.random() < 0.45 else None

    hills = []
    grass, wheat, meadow = (0.30, 0.52, 0.18), (0.86, 0.70, 0.28), (0.42, 0.60, 0.22)
    if water is None:
        n_hills = int(rng.integers(1, 4))
        tops = np.sort(rng.uniform(horizon, horizon + 0.25, n_hills))
        tops[0] = horizon
    else:
        n_hills = 1
        tops = np.array([water])
    for i, top in enumerate(tops):
        texture = str(rng.choice(["grass", "wheat", "meadow"], p=[0.4, 0.35, 0.25]))
        base = {"grass": grass, "wheat": wheat, "meadow": meadow}[texture]
        front = i == n_hills - 1
        amplitude = rng.uniform(0.01, 0.05) * (2.0 if front and water is None else 1.0)
        hills.append(Hill(
            profile=_profile(rng, top + amplitude, 3, amplitude, rng.uniform(0.4, 1.2)),
            color_top=_color(rng, tuple(c * 1.1 for c in base), 0.05),
            color_bottom=_color(rng, tuple(c * 0.75 for c in base), 0.05),
            texture=texture,
            vanishing_x=float(rng.uniform(0.2, 0.8)),
        ))

    houses = []
    if rng.random() < 0.5:
        hill = int(rng.integers(0, len(hills)))
        center = rng.uniform(0.25, 0.75)
        for j in range(int(rng.integers(3, 8))):
            x = float(center + rng.uniform(-0.18, 0.18))
            width = float(rng.uniform(0.035, 0.06))
            houses.append(House(
                x=x, base=float(hills[hill].profile(x) + rng.uniform(0.01, 0.04)), width=width,
                height=float(width * rng.uniform(0.6, 1.0)), roof=float(width * rng.uniform(0.35, 0.6)),
                wall=_color(rng, (0.85, 0.80, 0.68), 0.06), roof_color=_color(rng, (0.55, 0.25, 0.18), 0.08),
                steeple=j == 0 and rng.random() < 0.6, hill=hill,
            ))
        houses.sort(key=lambda h: h.base)

    trees = []
    for _ in range(int(rng.integers(0, 9))):
        hill = int(rng.integers(0, len(hills)))
        x = float(rng.uniform(0.0, 1.0))
        kind = "cypress" if rng.random() < 0.35 else "round"
        scale = 0.5 + 0.6 * hill / max(len(hills) - 1, 1)
        height = float(rng.uniform(0.06, 0.14) * scale * (1.6 if kind == "cypress" else 1.0))
        trees.append(Tree(
            kind=kind, x=x, base=float(hills[hill].profile(x) + rng.uniform(0.005, 0.05)), height=height,
            width=float(height * (rng.uniform(0.16, 0.24) if kind == "cypress" else rng.uniform(0.6, 0.9))),
            color=_color(rng, (0.12, 0.30, 0.14) if kind == "cypress" else (0.24, 0.45, 0.17), 0.04), hill=hill,
        ))
    if rng.random() < 0.3:  # a big cypress in the foreground, as in The Starry Night
        x = float(rng.choice([rng.uniform(0.06, 0.3), rng.uniform(0.7, 0.94)]))
        height = float(rng.uniform(0.45, 0.75))
        trees.append(Tree("cypress", x, 1.05, height, height * rng.uniform(0.13, 0.18),
                          _color(rng, (0.10, 0.24, 0.12), 0.03), len(hills) - 1))
    trees.sort(key=lambda t: (t.hill, t.base))

    clouds = []
    for _ in range(int(rng.choice([0, 1, 2, 3, 4], p=[0.25, 0.2, 0.25, 0.2, 0.1]))):
        cx, cy = rng.uniform(0.0, 1.0), rng.uniform(0.06, horizon - 0.12)
        width = rng.uniform(0.12, 0.3)
        puffs = []
        for _ in range(int(rng.integers(4, 9))):
            r = width * rng.uniform(0.18, 0.35)
            puffs.append((float(cx + rng.uniform(-0.5, 0.5) * width), float(cy + rng.uniform(-0.3, 0.15) * r),
                          float(r), float(r * rng.uniform(0.45, 0.75))))
        clouds.append(Cloud(tuple(puffs)))

    n_stars = int(rng.integers(30, 90))
    stars = tuple(
        (float(x), float(y), float(b))
        for x, y, b in zip(rng.uniform(0, 1, n_stars), rng.uniform(0, horizon, n_stars),
                           rng.uniform(0.3, 1.0, n_stars) ** 2)
    )

    label = light if light is not None else str(rng.choice(["noon", "dawn", "dusk", "night"],
                                                           p=[0.35, 0.17, 0.18, 0.3]))
    body_xy = (float(rng.uniform(0.12, 0.88)), float(rng.uniform(0.08, horizon - 0.12)))
    if label == "dawn":
        body_xy = (body_xy[0], float(horizon - rng.uniform(0.04, 0.12)))
    if label == "dusk":
        body_xy = (body_xy[0], float(horizon - rng.uniform(0.02, 0.1)))
    lit = _jitter_light(make_light(label, horizon, body_xy), rng, 0.03)

    return Scene(seed=int(seed), horizon=horizon, mountains=tuple(mountains), water=water, hills=tuple(hills),
                 trees=tuple(trees), houses=tuple(houses), clouds=tuple(clouds), stars=stars, light=lit)


def relight(scene: Scene, label: str) -> Scene:
    """The same scene at another time of day, with the sun or moon where that time puts it (no jitter)."""
    return dataclasses.replace(scene, light=make_light(label, scene.horizon))


# ---------------------------------------------------------------------------------------------------------
# Rendering helpers
#
# Shapes are drawn into small windows around them (a window is a (rows, columns) pair of slices), so that
# the cost of a tree or a house is that of its own pixels, not of the whole picture.

Window = tuple[slice, slice]


@functools.lru_cache(maxsize=8)
def _coordinates(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y) in picture units; cached and read-only."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (xs + 0.5) / size, (ys + 0.5) / size
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _noise(seed: int, key: int, size: int, cells: tuple[int, int], octaves: int = 1) -> np.ndarray:
    """Smooth random field, about N(0, 1), on a grid of `cells` (rows, columns) independent of `size`."""
    rng = np.random.default_rng([seed, key])
    field = np.zeros((size, size), np.float32)
    weight = 1.0
    for octave in range(octaves):
        rows, cols = cells[0] * 2**octave, cells[1] * 2**octave
        grid = rng.standard_normal((rows + 1, cols + 1), dtype=np.float32)
        field += weight * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        weight *= 0.5
    return field


def _window(x0: float, y0: float, x1: float, y1: float, size: int) -> Window | None:
    """The pixel window covering a box given in picture units (with a pixel of margin), or None if empty."""
    c0, c1 = max(int(np.floor(x0 * size)) - 1, 0), min(int(np.ceil(x1 * size)) + 2, size)
    r0, r1 = max(int(np.floor(y0 * size)) - 1, 0), min(int(np.ceil(y1 * size)) + 2, size)
    if c1 <= c0 or r1 <= r0:
        return None
    return slice(r0, r1), slice(c0, c1)


_SHIFT = 4  # sub-pixel precision of cv2 drawing: 1/16 px


def _fixed(value: np.ndarray | float, offset: float, size: int) -> np.ndarray:
    return np.round((np.asarray(value, np.float64) * size - offset) * (1 << _SHIFT)).astype(np.int32)


def _polygon(points, size: int) -> tuple[Window, np.ndarray] | None:
    """Anti-aliased coverage (float32 in [0, 1]) of a polygon given in picture units, in its window."""
    points = np.asarray(points, np.float64)
    window = _window(*points.min(0), *points.max(0), size)
    if window is None:
        return None
    rows, cols = window
    canvas = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
    vertices = np.stack([_fixed(points[:, 0], cols.start, size), _fixed(points[:, 1], rows.start, size)], 1)
    cv2.fillPoly(canvas, [vertices], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    return window, canvas.astype(np.float32) / 255.0


def _ellipses(ellipses, size: int) -> tuple[Window, np.ndarray] | None:
    """Coverage of a union of axis-aligned ellipses (x, y, radius x, radius y), in its window."""
    boxes = np.array([(x - rx, y - ry, x + rx, y + ry) for x, y, rx, ry in ellipses])
    window = _window(*boxes[:, :2].min(0), *boxes[:, 2:].max(0), size)
    if window is None:
        return None
    rows, cols = window
    canvas = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
    for x, y, rx, ry in ellipses:
        center = (int(_fixed(x, cols.start, size)), int(_fixed(y, rows.start, size)))
        axes = (max(int(_fixed(rx, 0, size)), 1), max(int(_fixed(ry, 0, size)), 1))
        cv2.ellipse(canvas, center, axes, 0, 0, 360, 255, -1, cv2.LINE_AA, shift=_SHIFT)
    return window, canvas.astype(np.float32) / 255.0


def _below(profile: Profile, size: int) -> tuple[Window, np.ndarray] | None:
    """Coverage of the region below a profile line, down to the bottom of the picture."""
    xs = np.linspace(-0.02, 1.02, max(size // 2, 64))
    return _polygon(np.concatenate([np.stack([xs, profile(xs)], 1), [[1.02, 1.05], [-0.02, 1.05]]]), size)


def _over(image: np.ndarray, shape: tuple[Window, np.ndarray] | None, color) -> None:
    """Paint `color` ((3, 1, 1), or (3, h, w) for the shape's window) over a (3, H, W) `image`, in place."""
    if shape is None:
        return
    (rows, cols), mask = shape
    target = image[:, rows, cols]
    target *= 1.0 - mask
    target += mask * color


def _rgb(color) -> np.ndarray:
    """An RGB triple as a (3, 1, 1) array that broadcasts over (3, H, W) images."""
    return np.asarray(color, np.float32).reshape(3, 1, 1)


def _lit(color, light: Light) -> np.ndarray:
    return _rgb(color) * _rgb(light.ambient)


def _blur(image: np.ndarray, sigma_x: float, sigma_y: float | None = None) -> np.ndarray:
    """Gaussian blur of each plane of a (C, H, W) array."""
    return np.stack([cv2.GaussianBlur(plane, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y or sigma_x)
                     for plane in image])


# ---------------------------------------------------------------------------------------------------------
# The photo
#
# Images are (3, H, W) float32 while they are drawn: numpy broadcasts a colour over a plane an order of
# magnitude faster in that layout than in (H, W, 3).


def render_photo(scene: Scene, size: int) -> np.ndarray:
    """The scene as a photograph: (size, size, 3) uint8 RGB.

    Smooth sky gradients, soft light and bloom, atmospheric perspective, lake reflections, a slight lens
    blur and vignette, and fine film grain.
    """
    light = scene.light
    x, y = _coordinates(size)
    px = size / 256.0  # one pixel of the 256 px reference

    # Sky: zenith to horizon, brightened around the sun or moon.
    t = np.clip(y[:, :1] / scene.horizon, 0.0, 1.0) ** 0.8
    image = np.repeat((1 - t)[None] * _rgb(light.zenith) + t[None] * _rgb(light.horizon), size, axis=2)
    bx, by = light.body_xy
    if light.body != "none":
        distance = np.sqrt((x - bx) ** 2 + (y - by) ** 2)
        glow = light.glow * (0.6 * np.exp(-distance / 0.07) + 0.4 * np.exp(-distance / 0.3))
        image += glow * (_rgb(light.body_color) - 0.5 * image)

    # Stars: small soft points, brighter ones a little larger.
    if light.stars > 0 and scene.stars:
        canvas = np.zeros((size, size), np.uint8)
        for sx, sy, brightness in scene.stars:
            radius = 1 if brightness < 0.55 or size < 200 else 2
            cv2.circle(canvas, (int(_fixed(sx, 0, size)), int(_fixed(sy, 0, size))), radius << _SHIFT,
                       int(255 * brightness), -1, cv2.LINE_AA, shift=_SHIFT)
        star = cv2.GaussianBlur(canvas.astype(np.float32), (0, 0), 0.5 * px)
        image += (light.stars * 1.4 / 255.0) * star * _rgb((1.0, 0.97, 0.85))

    # Sun or moon disc.
    if light.body != "none":
        r = light.body_radius
        window = _window(bx - r, by - r, bx + r, by + r, size)
        if window is not None:
            d = np.sqrt((x[window] - bx) ** 2 + (y[window] - by) ** 2)
            disc = np.clip((r - d) * size + 0.5, 0.0, 1.0)
            # The sun is far brighter than anything else: it burns out to white and blooms.
            color = _rgb(light.body_color) * (1.8 if light.body == "sun" else 1.0)
            if light.body == "moon":  # faint maria on the moon
                maria = _noise(scene.seed, _MOON, size, (24, 24))[window]
                color = color * (0.93 + 0.04 * np.clip(maria, -1.5, 1.5))
            _over(image, (window, disc), color)

    # Clouds: soft unions of ellipses, lit from above, shaded below.
    cloud_texture = _noise(scene.seed, _CLOUD_NOISE, size, (8, 8), octaves=3) if scene.clouds else None
    for cloud in scene.clouds:
        blur = 2.5 * px
        margin = 3 * blur / size
        outer = _ellipses([(cx, cy, rx + margin, ry + margin) for cx, cy, rx, ry in cloud.puffs], size)
        inner = _ellipses(cloud.puffs, size)
        if outer is None or inner is None:
            continue
        window = outer[0]
        canvas = np.zeros(x[window].shape, np.float32)
        (rows, cols), mask = inner
        canvas[rows.start - window[0].start:rows.stop - window[0].start,
               cols.start - window[1].start:cols.stop - window[1].start] = mask
        mask = cv2.GaussianBlur(canvas, (0, 0), blur)
        mask *= np.clip(0.85 + 0.25 * cloud_texture[window], 0.0, 1.0)
        tops = min(p[1] - p[3] for p in cloud.puffs)
        bottoms = max(p[1] + p[3] for p in cloud.puffs)
        shade = np.clip((y[window] - tops) / max(bottoms - tops, 1e-3), 0.0, 1.0)
        color = (1 - shade) * _rgb(light.cloud) + shade * _rgb(light.cloud_shade)
        _over(image, (window, 0.92 * mask), color)

    # Mountains, far to near: rock texture, sunlit and shaded faces, snow, haze.
    rock = _noise(scene.seed, _ROCK, size, (10, 14), octaves=3) if scene.mountains else None
    for mountains in scene.mountains:
        shape = _below(mountains.profile, size)
        if shape is None:
            continue
        window = shape[0]
        xw, yw = x[window], y[window]
        ridge = mountains.profile(xw[0])[None, :].astype(np.float32)
        depth_below = np.clip(yw - ridge, 0.0, None)
        # Faces below a peak widen downwards: the slope that shades a point is the ridge's slope smoothed
        # over a width that grows with the depth below the ridge, so peaks cast lit and shaded triangles.
        slope = np.tanh(1.5 * np.gradient(mountains.profile(xw[0]), xw[0])).astype(np.float32)
        levels = np.stack([cv2.GaussianBlur(slope[None, :], (0, 0), sigmaX=max(s * size, 0.3))[0]
                           for s in (0.002, 0.01, 0.025, 0.06)])
        position = np.clip(depth_below / 0.06, 0.0, 2.999) * 1.5  # 0..4.5 -> level 0..3
        level = np.minimum(position.astype(np.int32), 2)
        fraction = np.minimum(position - level, 1.0)
        columns = np.arange(xw.shape[1])[None, :]
        smoothed = (1 - fraction) * levels[level, columns] + fraction * levels[level + 1, columns]
        facing = smoothed * (np.sign(bx - xw) if light.body != "none" else 0.0)
        strata = rock[window] + 0.5 * np.sin((yw - 0.4 * smoothed * (xw - 0.5)) * 120.0 + 2.0 * rock[window])
        shading = 1.0 + (0.5 + light.direct) * 0.6 * facing * np.exp(-depth_below / 0.25)
        shading = shading * (1.0 + 0.05 * strata - 0.4 * np.clip(depth_below, 0.0, 0.25))
        color = _lit(mountains.color, light) * shading
        if mountains.snow > 0:
            snow_line = mountains.snow * (1.0 + 0.5 * rock[window])
            peak_height = mountains.profile.base - ridge
            peaks = peak_height > 0.5 * peak_height.max()
            snow = np.clip((snow_line - depth_below) * size / 3.0, 0.0, 1.0) * peaks
            color += snow * (_lit((0.93, 0.94, 0.97), light) * shading - color)
        haze = light.haze * (0.25 + 0.6 * mountains.depth)
        color = (1 - haze) * color + haze * _rgb(light.horizon)
        _over(image, shape, color)

    # A lake: the picture above the horizon mirrored, rippled, darkened and tinted.
    if scene.water is not None:
        top = max(int(np.floor(scene.horizon * size)) - 1, 0)
        rows = slice(top, size)
        waves = _noise(scene.seed, _WATER, size, (48, 6))[rows]
        depth_below = np.clip(y[rows] - scene.horizon, 0.0, None)
        source_y = (2 * scene.horizon - y[rows]) * size - 0.5
        source_x = x[rows] * size - 0.5 + waves * (1.0 + 40.0 * depth_below) * px
        reflection = np.stack([cv2.remap(plane, source_x, source_y, cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REFLECT) for plane in image])
        reflection = _blur(reflection, 0.6 * px, 1.5 * px)
        ripple = 0.04 * np.clip(waves, -2.0, 2.0)
        color = 0.7 * reflection + 0.3 * _lit((0.10, 0.22, 0.30), light) + ripple
        mask = np.clip((y[rows] - scene.horizon) * size + 0.5, 0.0, 1.0)
        _over(image, ((rows, slice(0, size)), mask), color)

    # Hills back to front, each followed by the houses and trees standing on it.
    grass = _noise(scene.seed, _GRASS, size, (24, 24), octaves=2)
    foliage = _noise(scene.seed, _FOLIAGE, size, (40, 40), octaves=2)
    for index, hill in enumerate(scene.hills):
        shape = _below(hill.profile, size)
        if shape is not None:
            window = shape[0]
            xw, yw = x[window], y[window]
            ridge = hill.profile(xw[0])[None, :].astype(np.float32)
            t = np.clip((yw - ridge) / 0.35, 0.0, 1.0)
            texture = 1.0 + 0.06 * grass[window]
            if hill.texture == "wheat":  # furrows converging to a point on the horizon
                angle = np.arctan2(xw - hill.vanishing_x, yw - ridge + 0.12)
                texture += 0.08 * np.sin(angle * 40.0)
            elif hill.texture == "meadow":  # specks of flowers
                texture += 0.25 * np.clip(foliage[window] - 1.6, 0.0, None)
            color = ((1 - t) * _rgb(hill.color_top) + t * _rgb(hill.color_bottom)) * texture
            _over(image, shape, color * _rgb(light.ambient))
        for house in (h for h in scene.houses if h.hill == index):
            _draw_house(image, house, light, size)
        for tree in (t for t in scene.trees if t.hill == index):
            _draw_tree(image, tree, light, foliage, size)

    return _finish_photo(image, scene.seed, size)


def _draw_house(image: np.ndarray, house: House, light: Light, size: int) -> None:
    left, right = house.x - house.width / 2, house.x + house.width / 2
    top = house.base - house.height
    sun_left = light.body != "none" and light.body_xy[0] < house.x
    wall = _lit(house.wall, light) * (1.0 + (0.15 if sun_left else -0.05) * light.direct / 0.35)
    _over(image, _polygon([[left, house.base], [right, house.base], [right, top], [left, top]], size), wall)
    roof = [[left - 0.004, top], [right + 0.004, top], [house.x, top - house.roof]]
    _over(image, _polygon(roof, size), _lit(house.roof_color, light))
    if house.steeple:
        sw = house.width * 0.25
        tower = [[house.x - sw, top + 0.002], [house.x + sw, top + 0.002], [house.x + sw, top - house.roof * 1.6],
                 [house.x, top - house.roof * 3.8], [house.x - sw, top - house.roof * 1.6]]
        _over(image, _polygon(tower, size), _lit(house.roof_color, light) * 0.8)
    # Two windows: dark by day, glowing orange-yellow at dusk and night.
    glow = light.windows
    color = (1 - glow) * _lit((0.16, 0.15, 0.18), light) + glow * _rgb((1.0, 0.82, 0.35))
    for wx in (house.x - house.width * 0.22, house.x + house.width * 0.22):
        w, h = house.width * 0.11, house.height * 0.16
        wy = top + house.height * 0.45
        _over(image, _polygon([[wx - w, wy - h], [wx + w, wy - h], [wx + w, wy + h], [wx - w, wy + h]], size),
              color)


def _draw_tree(image: np.ndarray, tree: Tree, light: Light, foliage: np.ndarray, size: int) -> None:
    x, y = _coordinates(size)
    sun_x = light.body_xy[0] if light.body != "none" else tree.x
    if tree.kind == "cypress":
        t = np.linspace(0.0, 1.0, 24)
        half = tree.width / 2 * np.sin(np.pi * np.clip(t, 0.02, 1.0)) ** 0.6 * (1.0 - 0.35 * t)
        half[-1] = 0.0
        heights = tree.base - t * tree.height
        wobble = 0.004 * np.sin(t * 37.0 + tree.x * 50.0)
        outline = np.concatenate([np.stack([tree.x - half + wobble, heights], 1),
                                  np.stack([tree.x + half + wobble, heights], 1)[::-1]])
        shape = _polygon(outline, size)
        if shape is None:
            return
        window = shape[0]
        xw = x[window]
        streaks = np.sin((xw - tree.x) * 180.0 + foliage[window] * 1.5)  # vertical sprays of foliage
        side = np.clip((xw - tree.x) * np.sign(sun_x - tree.x) / (tree.width / 2), -1.0, 1.0)
        shade = (1.0 + light.direct * side) * (1.0 + 0.12 * streaks + 0.08 * foliage[window])
        _over(image, shape, _lit(tree.color, light) * shade)
        return
    # A round tree: trunk, then a canopy of overlapping ellipses.
    trunk_w = tree.width * 0.08
    crown_y = tree.base - tree.height * 0.62
    trunk = [[tree.x - trunk_w, tree.base], [tree.x + trunk_w, tree.base], [tree.x + trunk_w * 0.7, crown_y],
             [tree.x - trunk_w * 0.7, crown_y]]
    _over(image, _polygon(trunk, size), _lit((0.25, 0.18, 0.12), light))
    r = tree.width / 2
    offsets = [(0.0, 0.0, 1.0), (-0.45, 0.15, 0.7), (0.45, 0.12, 0.72), (-0.2, -0.35, 0.7), (0.25, -0.3, 0.65)]
    shape = _ellipses([(tree.x + dx * r, crown_y + dy * r, r * s, r * s * 0.85) for dx, dy, s in offsets], size)
    if shape is None:
        return
    window = shape[0]
    side = ((x[window] - tree.x) * np.sign(sun_x - tree.x + 1e-6) - (y[window] - crown_y) * 0.7) / r
    shade = (1.0 + light.direct * 0.9 * np.clip(side, -1.0, 1.0)) * (1.0 + 0.15 * foliage[window])
    _over(image, shape, _lit(tree.color, light) * shade)


@functools.lru_cache(maxsize=4)
def _grain_texture(size: int) -> np.ndarray:
    """A fixed tile of Gaussian grain, twice the picture size; each photo takes its own offset into it."""
    texture = np.random.default_rng(_GRAIN).standard_normal((2 * size, 2 * size), dtype=np.float32)
    texture.setflags(write=False)
    return texture


@functools.lru_cache(maxsize=4)
def _vignette(size: int) -> np.ndarray:
    x, y = _coordinates(size)
    vignette = 1.0 - 0.35 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)
    vignette.setflags(write=False)
    return vignette


def _finish_photo(image: np.ndarray, seed: int, size: int) -> np.ndarray:
    """Camera look: bloom around bright light, slight lens blur, vignette, film grain; then 8-bit (H, W, 3)."""
    px = size / 256.0
    bright = np.clip(image - 0.85, 0.0, None)
    if bright.any():  # bloom is smooth: blur it at a quarter of the resolution
        small = size // 4
        bloom = [cv2.resize(cv2.GaussianBlur(cv2.resize(plane, (small, small), interpolation=cv2.INTER_AREA),
                                             (0, 0), 1.5 * px), (size, size), interpolation=cv2.INTER_LINEAR)
                 for plane in bright]
        image += 0.6 * np.stack(bloom)
    image = _blur(image, 0.55 * px)
    image *= _vignette(size)
    # A camera renders colours less saturated than the scene description has them.
    gray = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    image = gray + 0.85 * (image - gray)
    # Grain: luminance grain plus a little colour grain, from per-photo offsets into a fixed noise tile.
    rng = np.random.default_rng([seed, _GRAIN])
    texture = _grain_texture(size)
    offsets = rng.integers(0, size, (4, 2))
    oy, ox = offsets[0]
    image += 0.01 * texture[oy:oy + size, ox:ox + size]
    for channel, (oy, ox) in enumerate(offsets[1:]):
        image[channel] += 0.004 * texture[oy:oy + size, ox:ox + size]
    planes = np.clip(image * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    return cv2.merge(list(planes))


def scene_seed(*key: int | str) -> int:
    """A 63-bit seed for one picture from a key such as (set name, seed, split, index).

    A hash of the whole key, so that each picture's seed depends on its own key only: asking for more
    training pictures never changes the ones already there.
    """
    text = "/".join(str(part) for part in key)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


__all__ = ["Light", "Scene", "TIMES_OF_DAY", "make_light", "relight", "render_photo", "sample_scene",
           "scene_seed"]
