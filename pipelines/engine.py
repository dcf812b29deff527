"""The seam between the GPU worker and whatever draws the pixels.

An `Engine` runs one batch of compatible requests synchronously, on the worker's GPU
thread. `pipelines.diffusers_engine.DiffusersEngine` is the real one; `FakeEngine` in
`pipelines.fake` costs a fixed time per batch, for scheduler tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from pipelines.types import GenerationRequest

PreviewFactory = Callable[[], Sequence[Image.Image]]
"""Decodes a cheap low-resolution preview per job of the batch, only when called."""

StepCallback = Callable[[int, int, PreviewFactory], None]
"""Called after each denoising step with (step, steps, previews).

It may raise `pipelines.errors.Interrupted` to stop the batch at once."""


@dataclass
class EngineOutput:
    """The images of one request of a batch, in seed order."""

    images: list[Image.Image]
    seeds: list[int]
    nsfw: list[bool] = field(default_factory=list)
    truncated: bool = False  # the prompt was longer than the text encoder reads and was cut


class Engine(Protocol):
    """Runs batches of requests that share a `batch_key`."""

    model: str

    def run(self, batch: Sequence[GenerationRequest], on_step: StepCallback) -> list[EngineOutput]:
        """Generate every request of `batch`; one output per request, same order.

        Raises `torch.cuda.OutOfMemoryError` when the batch does not fit (the worker
        splits it and retries), `Interrupted` when `on_step` asked to stop, and
        `pipelines.errors.GenerationError` for a request it cannot serve.
        """
        ...
