"""`NatsQueue`: the bot's `GenerationQueue` when the GPU workers run elsewhere, through NATS JetStream.

`submit` publishes the request on ``songe.jobs.<lane>.<class>`` with ``Nats-Msg-Id`` = job id (the
server drops a repeat within the duplicate window); workers (`pipelines.nats_worker`) pull it and post
its events on ``songe.events.<job>``, read here through a durable consumer and acked only after the
sink took them (a terminal event: once the sink says its outcome is recorded), so they survive a bot
restart. docs/scale-out.md tells the whole story; in short:

- One terminal event per job: the server keeps one per job (``Nats-Msg-Id`` "<job>:end"), this process
  drops repeats, and a job id seen to end is ignored if submitted again (as `LocalQueue` does).
- Poison: after `max_deliver` deliveries the server's advisory becomes ``Failed(kind=POISON)``.
- Fair share: at most `max_queued_per_user` jobs per user and lane wait in the stream; the rest wait
  here, in order, until that user's jobs start (lost with this process, like any unfinished job).
- `position` ranks the jobs this process knows by lane and stream sequence; `depth` is the jobs
  stream's message count plus the jobs held here. Both are approximate.
- Outage: `submit` and `cancel` raise `QueueUnavailable` (refund); a submit that timed out mid-way is
  cancelled and never reports.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from pipelines import codec
from pipelines.errors import QueueUnavailable
from pipelines.nats_setup import (
    INLINE_LIMIT,
    MSG_ID,
    NATS_ERRORS,
    OBJECT_HEADER,
    PAUSED_KEY,
    Layout,
    Puller,
    body_of,
    connect,
    ensure_layout,
    event_headers,
    offload,
    spawn,
    token,
)
from pipelines.types import (
    TERMINAL_EVENTS,
    Cancelled,
    EventSink,
    Failed,
    FailureKind,
    Finished,
    GenerationRequest,
    JobEvent,
    Lane,
    Queued,
    QueuePosition,
    Started,
)

log = logging.getLogger(__name__)

_REMEMBER_DONE = 10_000


@dataclass
class _Job:
    request: GenerationRequest
    rank: tuple[int, int, int]  # position order: lane, published before held, then stream sequence or arrival
    seq: int = 0  # stream sequence once published; 0 while held here
    started: bool = False
    payload: str | None = None  # the object holding the request, when it was too large for a message


@contextlib.contextmanager
def _unavailable(what: str) -> Iterator[None]:
    try:
        yield
    except NATS_ERRORS as exc:
        raise QueueUnavailable(f"{what}: {exc!r}") from exc


class NatsQueue:
    """A `GenerationQueue` whose jobs run on remote workers pulling from NATS JetStream.

    `url`: one server or a comma-separated list; `creds`: a NATS credentials file, or `user` and
    `password`. `stream`: the jobs stream's name, from which every other name derives. `ack_wait`:
    seconds a worker may stay silent before its job is given to another (workers heartbeat every
    ack_wait/3). `max_deliver`: deliveries before a job is declared poison. `duplicate_window`:
    seconds during which a repeated submit of a job id is dropped by the server. `max_queued_per_user`:
    per user and lane, how many jobs may wait in the stream at once (fair share). `timeout`: seconds
    to wait for the server's answer to one request.
    """

    def __init__(
        self,
        url: str,
        *,
        creds: str | Path | None = None,
        user: str | None = None,
        password: str | None = None,
        stream: str = "SONGE",
        ack_wait: float = 30.0,
        max_deliver: int = 3,
        duplicate_window: float = 3600.0,
        max_queued_per_user: int = 4,
        timeout: float = 5.0,
        reconnect_wait: float = 2.0,
    ) -> None:
        self._url = url
        self._auth = {"creds": creds, "user": user, "password": password}
        self._layout = Layout(stream)
        self._ack_wait = ack_wait
        self._max_deliver = max_deliver
        self._duplicate_window = duplicate_window
        self._per_user = max_queued_per_user
        self._timeout = timeout
        self._reconnect_wait = reconnect_wait
        self._jobs: dict[str, _Job] = {}
        self._held: dict[tuple[int, Lane], collections.deque[_Job]] = collections.defaultdict(collections.deque)
        self._waiting: collections.Counter[tuple[int, Lane]] = collections.Counter()
        self._done: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._orphans: set[str] = set()  # submits that failed mid-way: cancel them once connected
        self._orders = itertools.count()
        self._job_seconds = 0.0
        self._paused = False
        self._control_task: asyncio.Task[None] | None = None
        self._control: KeyValue | None = None  # set by start; pause/resume before it only set the state
        self._wake_pump = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._recording: set[asyncio.Task[None]] = set()  # terminal events acked once the sink recorded them
        self._closing = False  # loops check it: a cancel racing a wait_for can be lost on Python 3.11

    async def start(self, sink: EventSink) -> None:
        """Connect, create or update the streams, resume the workers and start reading events."""
        self._sink = sink
        with _unavailable(f"cannot reach the NATS server at {self._url}"):
            self._nc: Client = await connect(
                self._url,
                name="songe-bot",
                reconnect_wait=self._reconnect_wait,
                on_reconnect=self._on_reconnect,
                **self._auth,  # type: ignore[arg-type]
            )
        try:
            with _unavailable(f"cannot set up JetStream at {self._url} (is it enabled on the server?)"):
                await self._set_up()
        except QueueUnavailable:
            await self._nc.close()
            raise
        self._tasks = [spawn(self._consume(), "reading job events"), spawn(self._pump_loop(), "publishing held jobs")]

    async def _set_up(self) -> None:
        self._js = self._nc.jetstream(timeout=self._timeout)
        await ensure_layout(
            self._js,
            self._layout,
            ack_wait=self._ack_wait,
            max_deliver=self._max_deliver,
            duplicate_window=self._duplicate_window,
        )
        self._cancels: KeyValue = await self._js.key_value(self._layout.cancel_bucket)
        self._payloads: ObjectStore = await self._js.object_store(self._layout.payloads_bucket)
        control = await self._js.key_value(self._layout.control_bucket)
        await control.put(PAUSED_KEY, b"1" if self._paused else b"0")  # a fresh queue runs unless paused
        self._control = control
        self._events = Puller(self._nc, self._layout.events_stream, self._layout.events_consumer)
        await self._events.open()

    async def close(self) -> None:
        self._closing = True
        self._wake_pump.set()
        await self._events.close()
        for task in (*self._tasks, *self._recording):  # events not yet recorded stay unacked: sent again later
            task.cancel()
        await asyncio.gather(*self._tasks, *self._recording, return_exceptions=True)
        if self._control_task is not None:
            await asyncio.gather(self._control_task, return_exceptions=True)
        await self._nc.close()

    async def submit(self, request: GenerationRequest) -> None:
        if request.job_id in self._jobs or request.job_id in self._done:
            return
        self._require_connection()
        await self._settle_control()
        job = _Job(request, rank=(request.lane.priority, 1, next(self._orders)))
        self._jobs[request.job_id] = job
        key = (request.user_id, request.lane)
        if self._held[key] or self._waiting[key] >= self._per_user:
            self._held[key].append(job)
        else:
            try:
                await self._publish(job)
            except QueueUnavailable:
                self._abandon(job)
                raise
        position = self._position(job)
        self._sink(Queued(request.job_id, position.position, position.total))

    async def cancel(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        if job is None:
            return False
        if not job.seq:  # never left this process
            self._held[(job.request.user_id, job.request.lane)].remove(job)
            self._deliver(Cancelled(job_id))
            return True
        self._require_connection()
        with _unavailable(f"cannot cancel job {job_id}"):
            await self._cancels.put(token(job_id), b"1")
            if not job.started:  # report it now; the worker that pulls or holds it drops it (and acks it)
                # (The message is not deleted: on nats-server 2.15, deleting a message of a work-queue
                # stream before its delivery can leave the consumer blind to the next one.)
                await self._publish_event(Cancelled(job_id))
        return True

    async def position(self, job_id: str) -> QueuePosition | None:
        job = self._jobs.get(job_id)
        if job is None or job.started:
            return None
        return self._position(job)

    async def depth(self) -> int:
        held = sum(len(q) for q in self._held.values())
        try:
            info = await self._js.stream_info(self._layout.stream)
        except NATS_ERRORS:
            return len(self._jobs)
        return held + info.state.messages

    def pause(self) -> None:
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)

    # -- publishing ---------------------------------------------------------------------------------

    def _require_connection(self) -> None:
        if not self._nc.is_connected:
            raise QueueUnavailable(f"not connected to the NATS server at {self._url}")

    async def _publish(self, job: _Job) -> None:
        """Put `job` on the stream (a retry after a failure is safe: the server drops repeats)."""
        request = job.request
        key = (request.user_id, request.lane)
        self._waiting[key] += 1
        try:
            with _unavailable(f"cannot queue job {request.job_id}"):
                name = f"request-{token(request.job_id)}"
                data = codec.dumps_request(request).encode()
                body, headers = await offload(self._payloads, name, data, {MSG_ID: request.job_id}, limit=INLINE_LIMIT)
                job.payload = name if OBJECT_HEADER in headers else None
                ack = await self._js.publish(self._layout.job_subject(request), body, headers=headers)
        except QueueUnavailable:
            self._waiting[key] -= 1
            raise
        job.seq = ack.seq
        job.rank = (job.rank[0], 0, ack.seq)
        log.debug("job=%s user=%s queued as %s (again: %s)", request.job_id, request.user_id, ack.seq, ack.duplicate)

    async def _publish_event(self, event: JobEvent) -> None:
        await self._js.publish(
            self._layout.event_subject(event.job_id), codec.dumps_event(event), headers=event_headers(event)
        )

    async def _pump_loop(self) -> None:
        """Publish held jobs as their users' slots free up (and after a reconnect)."""
        while not self._closing:
            await self._wake_pump.wait()
            self._wake_pump.clear()
            for key, held in list(self._held.items()):
                if not held:
                    del self._held[key]
                while held and self._waiting[key] < self._per_user and self._nc.is_connected:
                    job = held.popleft()
                    try:
                        await self._publish(job)
                    except QueueUnavailable as exc:
                        log.warning("job=%s stays held: %s", job.request.job_id, exc)
                        held.appendleft(job)
                        break

    async def _on_reconnect(self) -> None:
        self._wake_pump.set()
        self._set_paused(self._paused)
        for job_id in list(self._orphans):
            await self._cancel_orphan(job_id)

    def _abandon(self, job: _Job) -> None:
        """Forget a job whose submit failed (the caller refunds it); if it reached the stream, cancel it.

        The cancel request is sent at once: while reconnecting the client buffers it right behind the
        job, so a worker pulling the job finds it; and again after each reconnect until it went through.
        """
        del self._jobs[job.request.job_id]
        self._remember_done(job.request.job_id)
        self._orphans.add(job.request.job_id)
        spawn(self._cancel_orphan(job.request.job_id), f"cancelling orphan {job.request.job_id}")

    async def _cancel_orphan(self, job_id: str) -> None:
        try:
            await self._cancels.put(token(job_id), b"1")
        except NATS_ERRORS:
            return
        self._orphans.discard(job_id)

    def _set_paused(self, paused: bool) -> None:
        self._paused = paused
        control, previous = self._control, self._control_task
        if control is None:
            return  # start writes the state

        async def put() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await control.put(PAUSED_KEY, b"1" if self._paused else b"0")
            except NATS_ERRORS as exc:
                log.warning(
                    "cannot %s the workers now (%r); retrying after reconnect", "pause" if paused else "resume", exc
                )

        self._control_task = asyncio.create_task(put())

    async def _settle_control(self) -> None:
        if self._control_task is not None:
            await self._control_task

    # -- events -------------------------------------------------------------------------------------

    async def _consume(self) -> None:
        while not self._closing:
            try:
                async for msg in self._events.stream():
                    if self._closing:
                        return
                    await self._handle(msg)
            except NATS_ERRORS as exc:
                log.warning("reading job events failed (%r); retrying", exc)
                await asyncio.sleep(self._reconnect_wait)

    async def _handle(self, msg: Msg) -> None:
        if msg.subject.startswith("$JS.EVENT.ADVISORY."):
            await self._poison(json.loads(msg.data))
            await msg.ack()
            return
        try:
            data, name = await body_of(self._payloads, msg)
            event = codec.loads_event(data)
        except (ValueError, KeyError, TypeError, NotFoundError) as exc:  # NotFoundError: taken before a restart
            log.error("event %s is unreadable: %r", msg.subject, exc)
            await msg.term()
            return
        log.debug("job=%s %s received", event.job_id, type(event).__name__)
        job = self._jobs.get(event.job_id)
        recorded = self._deliver(event)
        ended = job is not None and event.job_id not in self._jobs
        used = [n for n in (name, job.payload if job is not None and ended else None) if n]
        if recorded is None:
            await self._ack(msg, used)
            return
        task = spawn(self._ack_once_recorded(msg, recorded, used), f"recording job {event.job_id}'s end")
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _ack_once_recorded(self, msg: Msg, recorded: Awaitable[None], used: list[str]) -> None:
        """Ack a terminal event once the sink recorded its outcome, telling the server meanwhile that it is
        being worked on; if recording fails the event is not acked, and comes again."""
        waiting = asyncio.ensure_future(recorded)
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(waiting), self._ack_wait / 3)
                break
            except TimeoutError:
                await msg.in_progress()
            except Exception as exc:
                log.warning("an event's outcome was not recorded (%r): it will come again", exc)
                return
        await self._ack(msg, used)

    async def _ack(self, msg: Msg, used: list[str]) -> None:
        """Ack an event and delete the object-store payloads it no longer needs."""
        await msg.ack()
        for name in used:
            with contextlib.suppress(NotFoundError):
                await self._payloads.delete(name)

    async def _poison(self, advisory: dict[str, object]) -> None:
        seq = int(str(advisory["stream_seq"]))
        try:
            stored = await self._js.get_msg(self._layout.stream, seq)
        except NotFoundError:
            return  # cancelled or finished meanwhile
        job_id = (stored.headers or {}).get(MSG_ID)
        if not job_id:
            return
        with contextlib.suppress(NotFoundError):
            await self._js.delete_msg(self._layout.stream, seq)
        log.error("job=%s failed on %s deliveries: poison", job_id, advisory.get("deliveries"))
        message = f"the job stopped {advisory.get('deliveries')} workers; it is not retried"
        await self._publish_event(Failed(job_id, FailureKind.POISON, message))

    def _deliver(self, event: JobEvent) -> Awaitable[None] | None:
        """Bookkeeping, deduplication, then the sink; returns what the sink returned for a terminal event."""
        job_id = event.job_id
        if job_id in self._done or isinstance(event, Queued):
            return None  # workers' Queued events hold their local positions, meaningless here
        job = self._jobs.get(job_id)
        if isinstance(event, TERMINAL_EVENTS):
            self._remember_done(job_id)
            if job is not None:
                del self._jobs[job_id]
                if not job.started and job.seq:
                    self._free_slot(job)
            if isinstance(event, Finished):  # a moving average of GPU seconds per job, for waits
                seconds = event.result.gpu_seconds
                self._job_seconds = 0.8 * self._job_seconds + 0.2 * seconds if self._job_seconds else seconds
        elif isinstance(event, Started) and job is not None and not job.started:
            job.started = True
            self._free_slot(job)
        try:
            recorded = self._sink(event)
        except Exception:  # a sink bug must not stop every other job's events
            log.exception("event sink failed on %s job=%s", type(event).__name__, job_id)
            return None
        return recorded if isinstance(event, TERMINAL_EVENTS) else None

    def _remember_done(self, job_id: str) -> None:
        self._done[job_id] = None
        if len(self._done) > _REMEMBER_DONE:
            self._done.popitem(last=False)

    def _free_slot(self, job: _Job) -> None:
        self._waiting[(job.request.user_id, job.request.lane)] -= 1
        self._wake_pump.set()

    def _position(self, job: _Job) -> QueuePosition:
        waiting = [j for j in self._jobs.values() if not j.started]
        ahead = sum(1 for j in waiting if j.rank < job.rank)
        return QueuePosition(ahead + 1, len(waiting), eta_seconds=ahead * self._job_seconds)
