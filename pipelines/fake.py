"""Fakes for tests and benchmarks: an `Engine` that paints flat colours, a request builder, a recording sink."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from PIL import Image

from pipelines.engine import EngineOutput, StepCallback
from pipelines.errors import GenerationError
from pipelines.seeds import image_seeds
from pipelines.types import TERMINAL_EVENTS, FailureKind, GenerationRequest, JobEvent


def fake_colour(prompt: str, seed: int) -> tuple[int, int, int]:
    """The colour `FakeEngine` paints an image of `prompt` with `seed`."""
    r, g, b = hashlib.blake2b(f"{prompt}\0{seed}".encode(), digest_size=3).digest()
    return r, g, b


def steps_run(request: GenerationRequest) -> int:
    """How many denoising steps a request actually runs (`--stop` cuts them short)."""
    return max(1, round(request.steps * request.stop / 100))


class FakeEngine:
    """An `Engine` at a chosen cost that paints each image in `fake_colour(prompt, seed)`.

    - `seconds_per_batch` / `seconds_per_step`: time spent (through `sleep`) per call and per step.
    - `oom_above`: raise `torch.cuda.OutOfMemoryError` when a batch holds more images than this.
    - `fail_prompts`: a batch holding one of these prompts raises `GenerationError(BAD_INPUT)`.
    - `before_step(step)`: called on the GPU thread before each step's callback (tests pause there).

    It records `attempts` (job ids of every call), `batches` (job ids of every call that
    succeeded), `last_step` (the last step whose callback it called) and `running`.
    """

    def __init__(
        self,
        *,
        seconds_per_batch: float = 0.0,
        seconds_per_step: float = 0.0,
        oom_above: int | None = None,
        fail_prompts: Collection[str] = (),
        model: str = "fake",
        before_step: Callable[[int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model = model
        self.seconds_per_batch = seconds_per_batch
        self.seconds_per_step = seconds_per_step
        self.oom_above = oom_above
        self.fail_prompts = frozenset(fail_prompts)
        self.before_step = before_step
        self._sleep = sleep
        self.attempts: list[tuple[str, ...]] = []
        self.batches: list[tuple[str, ...]] = []
        self.last_step = 0
        self.running = False
        self._ran = threading.Condition()

    def run(self, batch: Sequence[GenerationRequest], on_step: StepCallback) -> list[EngineOutput]:
        """Paint every request of `batch` after the configured cost, calling `on_step` per step."""
        ids = tuple(r.job_id for r in batch)
        self.attempts.append(ids)
        self.running = True
        try:
            self._check(batch)
            if self.seconds_per_batch:
                self._sleep(self.seconds_per_batch)
            steps = max(steps_run(r) for r in batch)
            for step in range(1, steps + 1):
                if self.seconds_per_step:
                    self._sleep(self.seconds_per_step)
                if self.before_step is not None:
                    self.before_step(step)
                self.last_step = step
                on_step(step, steps, lambda: [self._preview(r) for r in batch])
            outputs = [self._paint(r) for r in batch]
        finally:
            self.running = False
        with self._ran:
            self.batches.append(ids)
            self._ran.notify_all()
        return outputs

    def wait_for_batches(self, count: int, timeout: float = 10.0) -> bool:
        """Block until `count` batches have succeeded; False on timeout."""
        with self._ran:
            return self._ran.wait_for(lambda: len(self.batches) >= count, timeout)

    def _check(self, batch: Sequence[GenerationRequest]) -> None:
        images = sum(r.count for r in batch)
        if self.oom_above is not None and images > self.oom_above:
            import torch

            raise torch.cuda.OutOfMemoryError(f"fake: {images} images do not fit (limit {self.oom_above})")
        refused = [r.prompt for r in batch if r.prompt in self.fail_prompts]
        if refused:
            raise GenerationError(f"fake engine refuses {refused[0]!r}", FailureKind.BAD_INPUT)

    def _paint(self, request: GenerationRequest) -> EngineOutput:
        seeds = image_seeds(request.seed, request.count)
        size = (request.width, request.height)
        images = [Image.new("RGB", size, fake_colour(request.prompt, seed)) for seed in seeds]
        return EngineOutput(images=images, seeds=seeds, nsfw=[False] * len(seeds))

    def _preview(self, request: GenerationRequest) -> Image.Image:
        size = (max(1, request.width // 8), max(1, request.height // 8))
        return Image.new("RGB", size, fake_colour(request.prompt, request.seed))


def fake_request(job_id: str, **fields: Any) -> GenerationRequest:
    """A small text-to-image request (64x64, 4 steps, 1 image, user 1) with `fields` overridden."""
    values: dict[str, Any] = {
        "user_id": 1,
        "prompt": f"prompt of {job_id}",
        "width": 64,
        "height": 64,
        "seed": 1,
        "steps": 4,
        "guidance": 5.0,
        "count": 1,
    }
    values.update(fields)
    return GenerationRequest(job_id=job_id, **values)


class RecordingSink:
    """An `EventSink` that keeps every event and lets a coroutine await jobs' terminal events."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: JobEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, job_id: str) -> list[JobEvent]:
        """The events of one job, in delivery order."""
        return [e for e in self.events if e.job_id == job_id]

    def terminal(self, job_id: str) -> JobEvent | None:
        """The job's first terminal event, if any came."""
        return next((e for e in self.of(job_id) if isinstance(e, TERMINAL_EVENTS)), None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds after some event (TimeoutError after `timeout`)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def done(self, *job_ids: str, timeout: float = 10.0) -> list[JobEvent]:
        """Wait for the terminal event of every job of `job_ids`, and return them in that order."""
        await self.wait_for(lambda: all(self.terminal(j) is not None for j in job_ids), timeout)
        return [e for e in map(self.terminal, job_ids) if e is not None]
