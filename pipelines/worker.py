"""`LocalQueue`: the in-process `GenerationQueue`, one GPU thread driving an `Engine`.

Three threads take part:

- the event loop that called `start`: `submit`, `cancel`, `position`... run there, and the sink
  is only ever called there;
- the GPU thread, the only caller of the engine: it waits on a condition (no polling) for work,
  takes a batch from the `Scheduler`, runs it, and goes straight to the next;
- the encoder thread: PNG-encodes finished images and reports `Finished`, so that the GPU
  thread never waits on zlib.

Threads hand events to the loop through `_Outbox` (`loop.call_soon_threadsafe`); a job's
progress not yet delivered is replaced by its latest. Each job gets exactly one terminal
event: `_end` sends it and forgets the job, under the lock, and whatever comes later for a
forgotten job is dropped (the output of a job cancelled while its batch ran, for one).

Failures: when a batch of several jobs fails (out of memory or any other error) it is split
in halves and each half retried, so one bad or too-big job never sinks the others; a job that
fails alone gets `Failed` (OUT_OF_MEMORY, the `GenerationError`'s kind, or INTERNAL).
GPU time: each `engine.run` is timed on the GPU thread and its time shared between the jobs
of the batch by `work_units`; failed attempts and time spent queued are charged to no one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipelines.engine import Engine, EngineOutput, PreviewFactory, StepCallback
from pipelines.errors import GenerationError, Interrupted
from pipelines.images import encode_preview, encode_result
from pipelines.scheduler import Scheduler
from pipelines.types import (
    Cancelled,
    EventSink,
    Failed,
    FailureKind,
    Finished,
    GenerationRequest,
    JobEvent,
    Progressed,
    Queued,
    QueuePosition,
    Started,
)

log = logging.getLogger(__name__)

_REMEMBERED = 4096  # finished job ids kept so that a late duplicate submit is still ignored


@dataclass(frozen=True)
class WorkerStats:
    """How busy the GPU has been since `start`: engine time over wall time."""

    busy_seconds: float
    uptime_seconds: float
    batches: int

    @property
    def utilisation(self) -> float:
        return self.busy_seconds / self.uptime_seconds if self.uptime_seconds > 0 else 0.0


class _Outbox:
    """Events on their way from any thread to the sink, on the loop; undelivered progress is coalesced."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: EventSink) -> None:
        self._loop = loop
        self._sink = sink
        self._lock = threading.Lock()
        self._events: list[JobEvent] = []
        self._progress_at: dict[str, int] = {}  # job id -> index of its undelivered Progressed
        self._scheduled = False
        self.closed = False

    def post(self, event: JobEvent) -> None:
        """Queue `event` for the loop (callable from any thread)."""
        with self._lock:
            if self.closed:
                return
            index = self._progress_at.get(event.job_id) if isinstance(event, Progressed) else None
            if index is not None:
                self._events[index] = event
            else:
                if isinstance(event, Progressed):
                    self._progress_at[event.job_id] = len(self._events)
                self._events.append(event)
            wake, self._scheduled = not self._scheduled, True
        if wake:
            self._loop.call_soon_threadsafe(self.deliver)

    def deliver(self) -> None:
        """Hand every queued event to the sink (on the loop)."""
        with self._lock:
            events, self._events = self._events, []
            self._progress_at.clear()
            self._scheduled = False
        for event in events:
            try:
                self._sink(event)
            except Exception:
                log.exception("event sink failed on %s job=%s", type(event).__name__, event.job_id)


class LocalQueue:
    """The default `GenerationQueue`: jobs run on this process's GPU, one batch at a time.

    - `max_batch`: most jobs joined into one `engine.run` (same `batch_key` only).
    - `preview_interval`: least seconds between two preview decodes of a running batch.
    - `position_interval`: least seconds between two refreshes of queued jobs' `Queued` events.
    - `model`: the model name written into results when a request names none (default: the engine's).
    - `clock`: a monotonic clock in seconds, for GPU time and previews.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 4,
        preview_interval: float = 1.0,
        position_interval: float = 1.0,
        model: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._engine = engine
        self._max_batch = max_batch
        self._preview_interval = preview_interval
        self._position_interval = position_interval
        self._model = model or engine.model
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._scheduler = Scheduler()
        self._jobs: dict[str, GenerationRequest] = {}  # queued or running: every job still owed a terminal event
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._positions: dict[str, int] = {}  # last position sent in a Queued event, per queued job
        self._paused = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: _Outbox | None = None
        self._thread: threading.Thread | None = None
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="songe-encode")
        self._finished: list[tuple[list[GenerationRequest], list[EngineOutput], float]] = []  # GPU thread only
        self._refresh: asyncio.Handle | None = None
        self._last_refresh = -math.inf
        self._seconds_per_unit = 0.0
        self._busy = 0.0
        self._batches = 0
        self._started_at = 0.0

    # --- the GenerationQueue API (event loop) ---

    async def start(self, sink: EventSink) -> None:
        """Start the GPU thread; events go to `sink`, called on this event loop."""
        if self._thread is not None:
            raise RuntimeError("LocalQueue already started")
        self._loop = asyncio.get_running_loop()
        self._outbox = _Outbox(self._loop, sink)
        self._started_at = self._clock()
        self._thread = threading.Thread(target=self._serve, name="songe-gpu", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Stop the running batch at its next step and the GPU thread; unfinished jobs get no event."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._refresh is not None:
            self._refresh.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self._encoder.shutdown)
        if self._outbox is not None:
            self._outbox.deliver()
            self._outbox.closed = True

    async def submit(self, request: GenerationRequest) -> None:
        """Queue `request` and report `Queued`; a job id seen before is ignored."""
        with self._lock:
            if self._outbox is None or self._stopping:
                raise RuntimeError("LocalQueue is not running")
            if request.job_id in self._jobs or request.job_id in self._ended:
                log.info("duplicate submit ignored job=%s", request.job_id)
                return
            self._jobs[request.job_id] = request
            self._scheduler.add(request)
            place = self._scheduler.place(request.job_id, now=time.time())
            assert place is not None
            self._positions[request.job_id] = place[0]
            self._outbox.post(Queued(request.job_id, place[0], place[1]))
            self._wake.notify()
        self._request_refresh()

    async def cancel(self, job_id: str) -> bool:
        """End a queued or running job with `Cancelled` now; a batch left with no live job stops at its next step."""
        with self._lock:
            queued = self._scheduler.remove(job_id) is not None
            ended = self._end(job_id, Cancelled(job_id))
        if queued:
            self._request_refresh()
        return ended

    async def position(self, job_id: str) -> QueuePosition | None:
        """The job's place in the predicted run order and a wait estimated from recent GPU speed."""
        with self._lock:
            place = self._scheduler.place(job_id, now=time.time())
        if place is None:
            return None
        position, total, units_ahead = place
        return QueuePosition(position, total, units_ahead * self._seconds_per_unit)

    async def depth(self) -> int:
        """Jobs queued or running (running until their terminal event)."""
        with self._lock:
            return len(self._jobs)

    def pause(self) -> None:
        """Start no new batch until `resume`; the running one finishes."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Start batches again."""
        with self._lock:
            self._paused = False
            self._wake.notify()

    @property
    def stats(self) -> WorkerStats:
        """GPU busy time, uptime and batch count since `start`."""
        uptime = self._clock() - self._started_at if self._thread is not None else 0.0
        return WorkerStats(busy_seconds=self._busy, uptime_seconds=uptime, batches=self._batches)

    # --- bookkeeping shared by the threads ---

    def _end(self, job_id: str, event: JobEvent) -> bool:
        """Send the job's terminal event and forget it, unless it already ended (lock held)."""
        if self._jobs.pop(job_id, None) is None or self._outbox is None:
            return False
        self._positions.pop(job_id, None)
        self._ended[job_id] = None
        if len(self._ended) > _REMEMBERED:
            self._ended.popitem(last=False)
        self._outbox.post(event)
        return True

    def _alive(self, batch: Sequence[GenerationRequest]) -> list[int]:
        """Indexes of the batch's jobs still owed an event."""
        with self._lock:
            return [i for i, r in enumerate(batch) if r.job_id in self._jobs]

    def _request_refresh(self) -> None:
        """Schedule one refresh of queued positions, at most every `position_interval` (on the loop)."""
        if self._refresh is not None or self._loop is None or self._stopping:
            return
        delay = max(0.0, self._last_refresh + self._position_interval - self._loop.time())
        self._refresh = self._loop.call_later(delay, self._refresh_positions)

    def _refresh_positions(self) -> None:
        """Send `Queued` to every queued job whose position changed since the last one it got."""
        self._refresh = None
        self._last_refresh = asyncio.get_running_loop().time()
        with self._lock:
            order = self._scheduler.order(now=time.time())
            for position, request in enumerate(order, 1):
                if self._positions.get(request.job_id) != position and self._outbox is not None:
                    self._positions[request.job_id] = position
                    self._outbox.post(Queued(request.job_id, position, len(order)))

    # --- the GPU thread ---

    def _serve(self) -> None:
        assert self._outbox is not None and self._loop is not None
        while True:
            with self._lock:
                if self._stopping or self._paused or not len(self._scheduler):
                    self._hand_over()
                while not self._stopping and (self._paused or not len(self._scheduler)):
                    self._wake.wait()
                if self._stopping:
                    break
                batch = self._scheduler.take(max_batch=self._max_batch, now=time.time())
                for request in batch:
                    self._positions.pop(request.job_id, None)
                    self._outbox.post(Started(request.job_id))
            self._loop.call_soon_threadsafe(self._request_refresh)
            self._attempt(batch)
        self._hand_over()

    def _hand_over(self) -> None:
        """Give finished batches to the encoder thread.

        Called just before the engine runs again, or before this thread waits: handing over any
        earlier lets encoding take the GIL while this thread does its own work between batches.
        """
        for batch, outputs, elapsed in self._finished:
            self._encoder.submit(self._finish, batch, outputs, elapsed)
        self._finished.clear()

    def _attempt(self, batch: list[GenerationRequest]) -> None:
        """Run `batch` (its live jobs), splitting it in halves on failure."""
        batch = [batch[i] for i in self._alive(batch)]
        if not batch or self._stopping:
            return
        self._hand_over()
        started = self._clock()
        try:
            outputs = self._engine.run(batch, self._on_step(batch))
            if len(outputs) != len(batch):
                raise RuntimeError(f"engine returned {len(outputs)} outputs for {len(batch)} requests")
        except Exception as exc:  # noqa: BLE001 - any engine failure ends in Failed, the worker goes on
            self._account(self._clock() - started)
            if isinstance(exc, Interrupted) and (self._stopping or not self._alive(batch)):
                return
            oom = _release_memory_if_oom(exc)
            if len(batch) == 1:
                self._fail(batch[0], exc, oom=oom)
                return
            log.warning("batch failed (%s), retrying in halves: jobs=%s", type(exc).__name__, _ids(batch))
            half = len(batch) // 2
            self._attempt(batch[:half])
            self._attempt(batch[half:])
            return
        elapsed = self._clock() - started
        self._account(elapsed)
        units = sum(r.work_units for r in batch)
        if units > 0:
            self._seconds_per_unit = elapsed / units
        self._finished.append((batch, outputs, elapsed))

    def _account(self, seconds: float) -> None:
        self._busy += seconds
        self._batches += 1

    def _on_step(self, batch: list[GenerationRequest]) -> StepCallback:
        last_preview = self._clock()

        def on_step(step: int, steps: int, previews: PreviewFactory) -> None:
            nonlocal last_preview
            alive = self._alive(batch)
            if self._stopping or not alive:
                raise Interrupted("every job of the batch was cancelled" if not alive else "the queue is closing")
            jpegs: list[bytes | None] = [None] * len(batch)
            now = self._clock()
            if now - last_preview >= self._preview_interval:
                last_preview = now
                jpegs = self._previews(batch, previews)
            with self._lock:
                for i in alive:
                    if batch[i].job_id in self._jobs and self._outbox is not None:
                        self._outbox.post(Progressed(batch[i].job_id, step, steps, jpegs[i]))

        return on_step

    def _previews(self, batch: list[GenerationRequest], previews: PreviewFactory) -> list[bytes | None]:
        try:
            images = list(previews())
            return [encode_preview(image) for image in images] + [None] * (len(batch) - len(images))
        except Exception:
            log.warning("preview failed, going on without: jobs=%s", _ids(batch), exc_info=True)
            return [None] * len(batch)

    def _fail(self, request: GenerationRequest, exc: BaseException, *, oom: bool) -> None:
        if oom:
            kind, message = FailureKind.OUT_OF_MEMORY, "not enough GPU memory for this job, even alone"
        elif isinstance(exc, GenerationError):
            kind, message = exc.kind, str(exc)
        else:
            kind, message = FailureKind.INTERNAL, f"internal error ({type(exc).__name__})"
        internal = kind is FailureKind.INTERNAL
        log.log(
            logging.ERROR if internal else logging.INFO,
            "job failed job=%s user=%s kind=%s: %s",
            request.job_id,
            request.user_id,
            kind.value,
            message,
            exc_info=exc if internal else None,
        )
        with self._lock:
            self._end(request.job_id, Failed(request.job_id, kind, message))

    # --- the encoder thread ---

    def _finish(self, batch: list[GenerationRequest], outputs: list[EngineOutput], elapsed: float) -> None:
        """Encode each live job's images and report `Finished`, with its share of the batch's time."""
        units = sum(r.work_units for r in batch)
        for request, output in zip(batch, outputs):
            if not self._alive([request]):
                continue
            share = request.work_units / units if units > 0 else 1 / len(batch)
            try:
                result = encode_result(request, output, gpu_seconds=elapsed * share, model=request.model or self._model)
            except Exception as exc:  # noqa: BLE001 - reported as Failed(INTERNAL) and logged by _fail
                self._fail(request, exc, oom=False)
                continue
            with self._lock:
                self._end(request.job_id, Finished(request.job_id, result))


def _ids(batch: Sequence[GenerationRequest]) -> str:
    return ",".join(r.job_id for r in batch)


def _release_memory_if_oom(exc: BaseException) -> bool:
    """True if `exc` is torch's CUDA out-of-memory error, after emptying CUDA's cache."""
    torch = sys.modules.get("torch")  # no torch loaded: the engine cannot have raised torch's error
    if torch is None or not isinstance(exc, torch.cuda.OutOfMemoryError):
        return False
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return True
