"""Seeds of a job's images: image i uses seed + i, so one seed reproduces the whole grid."""

from __future__ import annotations


def image_seeds(seed: int, count: int) -> list[int]:
    """The seeds of `count` images of a job seeded with `seed`."""
    return [(seed + i) % 2**32 for i in range(count)]
