"""Midjourney-style prompt features, as pure functions (no torch).

- `::` weights: `space ship::2 planet::1` splits the prompt into parts with relative
  weights; the engine encodes each part and blends the embeddings by the normalised
  weights. Parts with a negative weight (`text::-0.5`) go to the negative side, blended with
  `--no` (weight 1).
- `--stylize` 0-1000 (default 100) scales the classifier-free guidance: see
  `guidance_for_stylize`.
- `--chaos` 0-100 spreads the images of a grid: each image's text embedding gets its own
  seeded Gaussian noise of `chaos_noise(chaos)` times the embedding's standard deviation,
  so the four images read the prompt a little differently (composition and palette drift
  apart as chaos grows) while staying reproducible from the seed. It works inside one
  batched call, unlike a per-image guidance scale.
- `--stop` 10-100 and `--tile` are handled by the engine (`pipelines.diffusers_engine`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pipelines.errors import GenerationError

_WEIGHT = re.compile(r"::\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))?")
CHAOS_MAX_NOISE = 0.5
"""The embedding noise, in standard deviations, at `--chaos 100`."""


@dataclass(frozen=True)
class PromptPart:
    text: str
    weight: float


@dataclass(frozen=True)
class WeightedPrompt:
    """The positive parts (weights > 0) and the negative parts (weights stored positive)."""

    positive: tuple[PromptPart, ...]
    negative: tuple[PromptPart, ...]


def parse_weights(prompt: str, negative_prompt: str = "") -> WeightedPrompt:
    """Split `a cat::2 a dog` into weighted parts; `--no` text joins the negative side at weight 1.

    Raises `GenerationError` when no part keeps a positive weight.
    """
    negative = [PromptPart(negative_prompt.strip(), 1.0)] if negative_prompt.strip() else []
    if "::" not in prompt:
        return WeightedPrompt((PromptPart(prompt.strip(), 1.0),), tuple(negative))
    pieces = _WEIGHT.split(prompt)
    positive: list[PromptPart] = []
    for text, raw in zip(pieces[0::2], pieces[1::2] + [None]):
        text = text.strip()
        weight = 1.0 if raw is None else float(raw)
        if text and weight:
            (positive if weight > 0 else negative).append(PromptPart(text, abs(weight)))
    if not positive:
        raise GenerationError("At least one part of the prompt needs a positive weight (e.g. `castle::2 fog::-0.5`).")
    return WeightedPrompt(tuple(positive), tuple(negative))


def guidance_for_stylize(preset_guidance: float, stylize: int) -> float:
    """Guidance for a `--stylize` value: the preset's at 100, half of it at 0, about twice it at 1000.

    Models run without classifier-free guidance (guidance <= 1, e.g. the turbo models) keep theirs.
    """
    if preset_guidance <= 1.0:
        return preset_guidance
    stylize = min(1000, max(0, stylize))
    return round(max(1.0, preset_guidance * (0.5 + 0.5 * math.sqrt(stylize / 100))), 2)


def chaos_noise(chaos: int) -> float:
    """The per-image embedding noise for `--chaos` (0-100), in standard deviations of the embedding."""
    return CHAOS_MAX_NOISE * min(100, max(0, chaos)) / 100
