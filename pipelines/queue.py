"""The seam between the bot and the GPU: a generation queue.

Two implementations share this contract (and one contract test suite):
`pipelines.worker.LocalQueue` (in-process GPU thread, the default) and
`pipelines.nats_queue.NatsQueue` (remote GPU workers over NATS JetStream).
"""

from __future__ import annotations

from typing import Protocol

from pipelines.types import EventSink, GenerationRequest, QueuePosition


class GenerationQueue(Protocol):
    """Accepts jobs and reports their events to one sink.

    Every submitted job ends with exactly one terminal event (`Finished`, `Failed` or
    `Cancelled`) delivered to the sink, on the event loop that called `start`.
    """

    async def start(self, sink: EventSink) -> None:
        """Begin serving; events of every job go to `sink` from now on."""
        ...

    async def close(self) -> None:
        """Stop serving. Jobs not yet finished get no terminal event (the caller persists them)."""
        ...

    async def submit(self, request: GenerationRequest) -> None:
        """Queue a job. Idempotent on `request.job_id`: a second submit is ignored."""
        ...

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; True if it was known and will end `Cancelled`."""
        ...

    async def position(self, job_id: str) -> QueuePosition | None:
        """Where a queued job stands, or None once it runs or is unknown."""
        ...

    async def depth(self) -> int:
        """How many jobs are waiting or running."""
        ...

    def pause(self) -> None:
        """Stop starting new batches (the running one finishes)."""
        ...

    def resume(self) -> None:
        """Start batches again after `pause`."""
        ...
