"""The seeds of a job's images, shared by every engine so one seed always gives the same grid."""

from __future__ import annotations

SEED_LIMIT = 2**32
"""Seeds live in [0, 2**32), as in Midjourney's `--seed`."""


def image_seeds(seed: int, count: int) -> list[int]:
    """The seed of each of `count` images of a job seeded `seed`: image i uses seed + i, wrapping at 2**32."""
    return [(seed + i) % SEED_LIMIT for i in range(count)]
