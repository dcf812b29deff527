"""The job service: request -> reserve -> persist -> submit -> watch -> settle or refund -> deliver.

It ties `quotas` (the ledger and the jobs table) to a `pipelines` generation queue, and
talks to Discord only through a `Presenter`. Every accepted job ends delivered, or refunded and its
author told, also across restarts: `recover()` resubmits open jobs, posts the results and tells the refunds
that a crash left unsent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.files import ImageFiles
from bot.job_types import (
    Accepted,
    DeliveryError,
    Envelope,
    Job,
    JobSpec,
    Presenter,
    QueueRefused,
    Running,
    StoredResult,
    Waiting,
)
from bot.watching import Watch, follow, waiting
from pipelines.errors import PipelineError
from pipelines.queue import GenerationQueue
from pipelines.types import (
    Cancelled,
    Failed,
    FailureKind,
    Finished,
    GenerationRequest,
    GenerationResult,
    JobEvent,
    Lane,
    Started,
)
from quotas import JobRecord, JobStatus, JobTicket, Mode, QuotaStore

log = logging.getLogger(__name__)

EDIT_INTERVAL = 1.5
"""Seconds between two edits of one progress message (Discord allows about 5 edits per 5 s per channel)."""

DELIVERY_RETRY_DELAYS = (2.0, 15.0, 60.0, 300.0)
"""Seconds before each new attempt to post a result Discord refused (an outage); then it waits for the next start."""


class JobService:
    """Owns the life of every job; `on_event` is the generation queue's sink."""

    def __init__(
        self,
        *,
        store: QuotaStore,
        queue: GenerationQueue,
        files: ImageFiles,
        presenter: Presenter,
        edit_interval: float = EDIT_INTERVAL,
        retry_delays: tuple[float, ...] = DELIVERY_RETRY_DELAYS,
    ) -> None:
        self.store = store
        self.queue = queue
        self.files = files
        self.presenter = presenter
        self.edit_interval = edit_interval
        self.retry_delays = retry_delays
        self.accepting = True
        self._watches: dict[str, Watch] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- submitting -------------------------------------------------------------------------

    async def submit(self, spec: JobSpec) -> Accepted:
        """Reserve quota, persist, post the progress message and queue the job.

        Raises `quotas.QuotaError` subclasses when refused, `QueueRefused` when the queue
        cannot take it (then the reservation is refunded).
        """
        if not self.accepting:
            raise QueueRefused("shutting down")
        request = spec.request
        envelope = Envelope(
            request=request,
            locale=spec.locale,
            display_prompt=spec.display_prompt or request.prompt,
            parameters=spec.parameters,
            private=spec.private,
        )
        ticket = JobTicket(
            job_id=request.job_id,
            user_id=request.user_id,
            kind=spec.kind,
            work_units=request.work_units,
            images=request.count,
            request=envelope.dumps(),
            mode=spec.mode,
            guild_id=spec.guild_id,
            channel_id=spec.channel_id,
            parent_job_id=spec.parent_job_id,
            image_index=spec.image_index,
            account_created_at=spec.account_created_at,
        )
        reservation = await self.store.reserve(ticket)
        record = await self.store.job(request.job_id)
        assert record is not None
        job = Job(record, envelope)
        position = await self.queue.position(request.job_id)
        try:
            message_id = await self.presenter.post_progress(job, waiting(position))
        except Exception:  # the job never reached the queue: whatever Discord answered, the time goes back
            await self.store.refund(request.job_id, reason="channel unreachable", told=True)  # the reply says so
            raise
        if message_id is not None:
            await self.store.set_message(request.job_id, channel_id=spec.channel_id, message_id=message_id)
            job = Job(dataclasses.replace(record, message_id=message_id), envelope)
        self._watch(job)
        try:
            await self.queue.submit(_effective(request, reservation.mode, reservation.relax_delay_seconds))
        except (TimeoutError, PipelineError, OSError) as exc:
            log.warning("job=%s user=%s queue refused: %s", request.job_id, request.user_id, exc)
            self._unwatch(request.job_id)
            await self._end(job, kind=FailureKind.INTERNAL, message="queue unavailable", reason="queue unavailable")
            raise QueueRefused(str(exc)) from exc
        log.info(
            "job=%s user=%s kind=%s mode=%s accepted", request.job_id, request.user_id, spec.kind, reservation.mode
        )
        return Accepted(request.job_id, reservation, message_id)

    async def cancel(self, job_id: str) -> bool:
        """Ask the queue to cancel; the refund follows the `Cancelled` event."""
        return await self.queue.cancel(job_id)

    # -- events -----------------------------------------------------------------------------

    def on_event(self, event: JobEvent) -> asyncio.Future[None] | None:
        """The queue's sink: coalesce progress, hand terminal events to the job's watcher.

        For a terminal event, returns a future done once the job is settled or refunded (see `EventSink`)."""
        watch = self._watches.get(event.job_id)
        if watch is None:
            if not isinstance(event, (Finished, Failed, Cancelled)):
                return None
            recorded = asyncio.get_running_loop().create_future()
            self._spawn(self._adopt(event, recorded))
            return recorded
        if isinstance(event, Started):
            self._spawn(self.store.mark_running(event.job_id))
        return watch.take(event)

    async def _adopt(self, event: JobEvent, recorded: asyncio.Future[None]) -> None:
        """A terminal event for a job nobody watches (after a restart, or from a remote worker)."""
        job = await self._load(event.job_id)
        if job is None:
            log.warning("job=%s event for an unknown job ignored", event.job_id)
        elif job.record.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            await self._finish(job, event, recorded)
        _done(recorded)  # nothing to record: an unknown job, or one that ended before

    def _watch(self, job: Job) -> None:
        watch = Watch(job)
        self._watches[job.job_id] = watch
        watch.task = self._spawn(self._run_watch(watch))

    def _unwatch(self, job_id: str) -> None:
        watch = self._watches.pop(job_id, None)
        if watch and watch.task and watch.task is not asyncio.current_task():
            watch.task.cancel()

    async def _run_watch(self, watch: Watch) -> None:
        try:
            event = await follow(watch, self.presenter, self.queue, self.edit_interval)
            await self._finish(watch.job, event, watch.recorded)
        finally:
            self._watches.pop(watch.job.job_id, None)
            if watch.recorded is not None:
                watch.recorded.cancel()  # stopped before recording the end (no-op once done)

    async def _finish(self, job: Job, event: JobEvent, recorded: asyncio.Future[None] | None = None) -> None:
        """Settle or refund the job for its terminal `event`, then deliver or tell. `recorded` is done once the
        outcome is in the database, and cancelled if it never got there (the queue then sends the event again)."""
        try:
            if isinstance(event, Finished):
                await self._succeed(job, event.result, recorded)
            elif isinstance(event, Failed):
                log.warning("job=%s user=%s failed (%s): %s", job.job_id, job.user_id, event.kind.value, event.message)
                reason = _failure_reason(event)
                await self._end(job, kind=event.kind, message=event.message, reason=reason, recorded=recorded)
            elif isinstance(event, Cancelled):
                await self._end(job, kind=None, message="", reason="cancelled", recorded=recorded)
        finally:
            if recorded is not None:
                recorded.cancel()  # no-op once done

    async def _succeed(self, job: Job, result: GenerationResult, recorded: asyncio.Future[None] | None) -> None:
        names = await asyncio.to_thread(self.files.save, job.job_id, result.images)
        stored = StoredResult(
            files=tuple(names),
            seeds=result.seeds,
            width=result.width,
            height=result.height,
            nsfw=tuple(result.nsfw) or tuple(False for _ in names),
            gpu_seconds=result.gpu_seconds,
            truncated=result.truncated,
        )
        charged = await self.store.settle(job.job_id, gpu_seconds=result.gpu_seconds, result=stored.dumps())
        log.info("job=%s user=%s settled gpu=%.2fs charged=%.2fs", job.job_id, job.user_id, result.gpu_seconds, charged)
        _done(recorded)
        record = await self.store.job(job.job_id)
        await self.deliver(Job(record or job.record, job.envelope))

    async def deliver(self, job: Job, *, after_restart: bool = False) -> None:
        """Post a settled job's result once, trying again after `retry_delays` while Discord refuses it.

        `mark_delivered` makes a later call a no-op. A crash between the post and `mark_delivered` is why a
        call `after_restart` first looks for the post (the presenter's nonce also makes Discord return it,
        but only for a few minutes)."""
        if job.record.result is None or job.record.delivered:
            return
        if after_restart and (posted := await self.presenter.posted_result(job)) is not None:
            log.info("job=%s user=%s result was already posted before the restart", job.job_id, job.user_id)
            await self.store.mark_delivered(job.job_id, message_id=posted)
            return
        stored = StoredResult.loads(job.record.result)
        images = await asyncio.to_thread(self.files.read_all, job.job_id, len(stored.files))
        for delay in (*self.retry_delays, None):
            try:
                message_id = await self.presenter.deliver(job, stored, images)
            except DeliveryError as exc:
                if delay is None:
                    log.error(
                        "job=%s user=%s result not delivered (%s); kept for the next start",
                        job.job_id,
                        job.user_id,
                        exc,
                    )
                    return
                log.warning(
                    "job=%s user=%s result not delivered (%s); again in %.0f s", job.job_id, job.user_id, exc, delay
                )
                await asyncio.sleep(delay)
            else:
                await self.store.mark_delivered(job.job_id, message_id=message_id)
                return

    async def _end(
        self,
        job: Job,
        *,
        kind: FailureKind | None,
        message: str,
        reason: str,
        recorded: asyncio.Future[None] | None = None,
    ) -> None:
        refunded = await self.store.refund(job.job_id, reason=reason)
        _done(recorded)
        await self._tell(job, refunded=refunded, kind=kind, message=message)

    async def _tell(self, job: Job, *, refunded: float, kind: FailureKind | None, message: str) -> None:
        """Tell the author their job ended and what came back; `mark_told` makes a restart tell only the untold."""
        try:
            await self.presenter.notify_ended(job, refunded=refunded, kind=kind, message=message)
        except DeliveryError:
            log.warning("job=%s user=%s could not be told of its end; again at the next start", job.job_id, job.user_id)
            return
        await self.store.mark_told(job.job_id)

    # -- start-up repair --------------------------------------------------------------------

    async def recover(self) -> tuple[int, int, int]:
        """Resubmit open jobs, refund the undecodable, post the results and tell the refunds left unsent;
        returns (resubmitted, refunded, results and notices sent again)."""
        resubmitted = refunded = delivered = 0
        for record in await self.store.open_jobs():
            if await self._resume(record, reason="restart", show_progress=True):
                resubmitted += 1
            else:
                refunded += 1
        for record in await self.store.untold_jobs():
            job = _decoded(record)
            if job is None:
                continue
            if record.status is JobStatus.SUCCEEDED:
                self._spawn(self.deliver(job, after_restart=True))  # not awaited: must not hold up the start
            else:
                kind, detail = _ending(record.failure)
                self._spawn(self._tell(job, refunded=record.refunded_seconds, kind=kind, message=detail))
            delivered += 1
        if resubmitted or refunded or delivered:
            log.info(
                "recovered jobs: %d resubmitted, %d refunded, %d results or notices sent again",
                resubmitted,
                refunded,
                delivered,
            )
        return resubmitted, refunded, delivered

    async def _resume(self, record: JobRecord, *, reason: str, show_progress: bool = False) -> bool:
        """Watch an open job again and re-send it to the queue (submission is idempotent on the job id); True if
        it is back in the queue, False if it was refunded (unreadable, or the queue refused it)."""
        job = _decoded(record)
        if job is None:
            await self.store.refund(record.job_id, reason=f"unreadable ({reason})", told=True)  # nothing to tell
            return False
        if show_progress and job.record.message_id is None and not job.envelope.private:
            try:
                message_id = await self.presenter.post_progress(job, Waiting(0, 0, 0.0))
            except DeliveryError:
                message_id = None
            if message_id is not None:
                await self.store.set_message(job.job_id, channel_id=record.channel_id or 0, message_id=message_id)
                job = Job(dataclasses.replace(job.record, message_id=message_id), job.envelope)
        self._watch(job)
        try:
            await self.queue.submit(_effective(job.envelope.request, record.mode, 0.0))
        except (TimeoutError, PipelineError, OSError):
            self._unwatch(job.job_id)
            await self._end(job, kind=FailureKind.INTERNAL, message="queue unavailable", reason=reason)
            return False
        return True

    async def _load(self, job_id: str) -> Job | None:
        record = await self.store.job(job_id)
        return None if record is None else _decoded(record)

    async def reconcile(self, *, deadline: timedelta, now: datetime | None = None) -> tuple[int, int]:
        """Repair open jobs the database shows that nothing answers for; returns (re-sent, refunded).

        An open job nobody watches (its terminal event was lost, e.g. a crash right after a remote
        queue delivered it) is re-sent: submission is idempotent on the job id. A job still open past
        `deadline` that is not waiting in the queue is cancelled and refunded, so every accepted job
        ends delivered or refunded even when a worker or an event vanishes.
        """
        now = now or datetime.now(UTC)
        resent = refunded = 0
        for record in await self.store.open_jobs():
            if record.job_id not in self._watches:
                if await self._resume(record, reason="reconcile"):
                    resent += 1
                else:
                    refunded += 1
                continue
            if now - record.created_at < deadline or await self.queue.position(record.job_id) is not None:
                continue
            await self.queue.cancel(record.job_id)
            watch = self._watches.pop(record.job_id, None)
            if watch is None:  # it ended while the queue was asked: settled or refunded already
                continue
            if watch.task is not None:
                watch.task.cancel()
            log.warning("job=%s user=%s open past its deadline: refunded", record.job_id, record.user_id)
            await self._end(watch.job, kind=FailureKind.INTERNAL, message="deadline", reason="deadline")
            refunded += 1
        return resent, refunded

    async def run_reconciler(self, *, deadline: timedelta, interval: float) -> None:
        """`reconcile` every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reconcile(deadline=deadline)
            except Exception:  # the reconciler must outlive any one bad pass
                log.exception("reconcile pass failed")

    async def drain(self, timeout: float) -> None:
        """Stop accepting jobs and wait (bounded) for the running ones to end, settled and delivered or refunded;
        queued ones stay persisted. Waiting for the watchers, not just the terminal events: `close` cancels them."""
        self.accepting = False
        busy = [
            w.task
            for w in self._watches.values()
            if w.task is not None and (isinstance(w.latest, Running) or w.terminal is not None)
        ]
        if busy:
            await asyncio.wait(busy, timeout=timeout)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job task failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _effective(request: GenerationRequest, mode: Mode, relax_delay: float) -> GenerationRequest:
    """The request as the queue should run it: the lane quotas granted, and any relax delay."""
    lane = Lane(mode.value)
    not_before = time.time() + relax_delay if relax_delay > 0 else 0.0
    return dataclasses.replace(request, lane=lane, not_before=not_before)


def _decoded(record: JobRecord) -> Job | None:
    """The job of a stored record, or None when its request cannot be decoded (logged)."""
    try:
        return Job(record, Envelope.loads(record.request))
    except (ValueError, KeyError, TypeError):
        log.error("job=%s stored request cannot be decoded", record.job_id)
        return None


def _done(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


_DETAILED = (FailureKind.BAD_INPUT, FailureKind.UNSUPPORTED)
"""Failures whose notice quotes the worker's message: the refund's reason keeps it, for a notice sent again."""


def _failure_reason(event: Failed) -> str:
    """The refund's reason for a failed job (`_ending` reads it back)."""
    detail = f": {event.message}" if event.kind in _DETAILED and event.message else ""
    return f"failed: {event.kind.value}{detail}"


def _ending(reason: str | None) -> tuple[FailureKind | None, str]:
    """The notice of a refunded job from its reason: the failure kind (None: cancelled) and the detail."""
    if reason == "cancelled":
        return None, ""
    kind, _, detail = (reason or "").removeprefix("failed: ").partition(": ")
    try:
        return FailureKind(kind), detail
    except ValueError:  # the bot's own reasons: "queue unavailable", "deadline", "restart"...
        return FailureKind.INTERNAL, reason or ""
