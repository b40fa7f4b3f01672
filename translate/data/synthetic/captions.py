"""Captions for synth-daytime: short, varied in wording, and always naming the time of day.

Each time of day has its own phrases; no phrase of one time of day occurs in a caption of another, so the
caption determines the label (`label_of_caption` recovers it), while templates, synonyms and the scene's
contents vary the wording for a text encoder to learn from.
"""

from __future__ import annotations

import re

import numpy as np

from .scene import TIMES_OF_DAY, Scene

# Phrases that place a scene in time ("a lake at dusk"), and adjectives for it ("a dusk landscape").
TIME_PHRASES: dict[str, tuple[str, ...]] = {
    "dawn": ("at dawn", "at sunrise", "at daybreak", "in the early morning", "as the sun rises", "at first light"),
    "noon": ("at noon", "at midday", "under the midday sun", "at high noon", "in the middle of the day"),
    "dusk": ("at dusk", "at sunset", "in the evening", "as the sun goes down", "at sundown"),
    "night": ("at night", "under the stars", "on a starry night", "at midnight", "by moonlight"),
}
TIME_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "dawn": ("dawn", "sunrise", "early morning"),
    "noon": ("noon", "midday", "noontime"),
    "dusk": ("dusk", "sunset", "evening"),
    "night": ("night", "moonlit", "nighttime"),
}

_TEMPLATES = (
    "{contents} {phrase}",
    "a landscape {phrase}, with {contents}",
    "{a_adjective} scene with {contents}",
    "{phrase}: {contents}",
    "a view of {contents} {phrase}",
    "{a_adjective} view of {contents}",
    "{contents}, seen {phrase}",
    "the countryside {phrase}: {contents}",
)


def _join(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def make_caption(scene: Scene, label: str, rng: np.random.Generator) -> str:
    """A short caption of `scene` at time of day `label`."""
    contents = scene.contents() or ["open country"]
    count = int(rng.integers(1, min(3, len(contents)) + 1))
    chosen = [contents[i] for i in sorted(rng.choice(len(contents), count, replace=False))]
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    adjective = TIME_ADJECTIVES[label][int(rng.integers(len(TIME_ADJECTIVES[label])))]
    return template.format(
        contents=_join(chosen),
        phrase=TIME_PHRASES[label][int(rng.integers(len(TIME_PHRASES[label])))],
        a_adjective=("an " if adjective[0] in "aeiou" else "a ") + adjective,
    )


def _pattern(label: str) -> re.Pattern:
    words = sorted(set(TIME_PHRASES[label]) | set(TIME_ADJECTIVES[label]), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b")


_PATTERNS = {label: _pattern(label) for label in TIMES_OF_DAY}


def labels_in_caption(caption: str) -> set[str]:
    """The times of day whose phrases occur in a caption (exactly one, for captions made here)."""
    return {label for label, pattern in _PATTERNS.items() if pattern.search(caption)}
