"""Following one job: its queue events coalesced into the latest progress, shown at most every `interval`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from bot.job_types import Job, Presenter, ProgressState, Running, Waiting
from pipelines.errors import PipelineError
from pipelines.queue import GenerationQueue
from pipelines.types import JobEvent, Progressed, Queued, QueuePosition, Started

log = logging.getLogger(__name__)


@dataclass
class Watch:
    """In-memory state of a job being watched: the latest progress, coalesced, and its terminal event."""

    job: Job
    latest: ProgressState | None = None
    shown: ProgressState | None = None
    terminal: JobEvent | None = None
    recorded: asyncio.Future[None] | None = None  # the terminal event's outcome is in the database
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def take(self, event: JobEvent) -> asyncio.Future[None] | None:
        """Note a queue event; for the first terminal one, returns `recorded` (see `pipelines.types.EventSink`)."""
        if isinstance(event, Queued):
            self.latest = Waiting(event.position, event.total, 0.0)
        elif isinstance(event, Started):
            self.latest = Running(0)
        elif isinstance(event, Progressed):
            previous = self.latest.preview if isinstance(self.latest, Running) else None
            self.latest = Running(event.percent, event.preview or previous)
        elif self.terminal is None:
            self.terminal = event
            self.recorded = asyncio.get_running_loop().create_future()
            self.ended.set()
            self.wake.set()
            return self.recorded
        self.wake.set()
        return None


async def follow(watch: Watch, presenter: Presenter, queue: GenerationQueue, interval: float) -> JobEvent:
    """Show the job's progress, edited at most every `interval` seconds, until its terminal event; return it."""
    last_edit = 0.0
    while watch.terminal is None:
        await watch.wake.wait()
        watch.wake.clear()
        if watch.terminal is not None:
            break
        wait = interval - (time.monotonic() - last_edit)
        if wait > 0:
            with contextlib.suppress(TimeoutError):  # the throttle never holds back the result
                await asyncio.wait_for(watch.ended.wait(), wait)
            if watch.terminal is not None:
                break
        state = watch.latest
        if isinstance(state, Waiting):
            state = await _estimated(queue, watch.job.job_id, state)
        if state is not None and state != watch.shown and watch.job.record.message_id is not None:
            last_edit = time.monotonic()
            watch.shown = state
            try:
                await presenter.edit_progress(watch.job, state)
            except Exception:  # a failed progress edit must never lose the job
                log.warning("job=%s progress edit failed", watch.job.job_id, exc_info=True)
    return watch.terminal


async def _estimated(queue: GenerationQueue, job_id: str, state: Waiting) -> Waiting:
    """`state` with the queue's current wait estimate (a `Queued` event carries the place, not the time)."""
    try:
        position = await queue.position(job_id)
    except (TimeoutError, PipelineError, OSError):
        return state
    return state if position is None else waiting(position)


def waiting(position: QueuePosition | None) -> Waiting:
    """The progress state of a job at `position` in the queue (None: not known yet)."""
    if position is None:
        return Waiting(0, 0, 0.0)
    return Waiting(position.position, position.total, position.eta_seconds)
