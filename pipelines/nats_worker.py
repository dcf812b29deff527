"""`RemoteWorker`: a GPU worker's side of the NATS JetStream queue, around a local `LocalQueue`.

One outbound connection; nothing listens. The worker looks for work lane by lane (turbo, then
fast, then relax) whenever fewer than `prefetch` of its jobs wait to start, hands what it pulled to
its `LocalQueue` at once (which batches the compatible ones, by priority and user), and publishes the
queue's events on ``songe.events.<job>``. A job's message is acknowledged only once its terminal event
is stored; until then the worker sends a heartbeat (``+WPI``) every ack_wait/3, so a long job keeps its
message while a crashed worker's message goes to another worker after ack_wait. Results larger than
`inline_limit` travel through the object store. Cancel requests (KV ``songe-cancel``) are checked when
a job is pulled and watched while it is held; pause (KV ``songe-control``) stops pulling and starting.
Workers never touch the ledger: results carry the measured GPU seconds.

`pipelines.remote_worker` connects it (`run_worker`) and holds the command line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, NotFoundError

from pipelines import codec
from pipelines.engine import Engine
from pipelines.nats_setup import (
    INLINE_LIMIT,
    LANES,
    MSG_ID,
    NATS_ERRORS,
    PAUSED_KEY,
    Layout,
    Puller,
    body_of,
    event_headers,
    offload,
    spawn,
    token,
)
from pipelines.types import (
    TERMINAL_EVENTS,
    Cancelled,
    Failed,
    FailureKind,
    GenerationRequest,
    JobEvent,
    Progressed,
    Queued,
    Started,
)
from pipelines.worker import LocalQueue

log = logging.getLogger(__name__)

_REMEMBER_ENDED = 4096


@dataclass
class _Held:
    """A job this worker pulled and has not finished: the message to heartbeat and finally ack."""

    msg: Msg
    started: bool = False


class RemoteWorker:
    """The pulling, heartbeating and event publishing around one `LocalQueue`; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        layout: Layout,
        max_batch: int = 4,
        prefetch: int | None = None,
        idle_poll: float = 1.0,
        inline_limit: int = INLINE_LIMIT,
        preview_interval: float = 1.0,
        grace: float = 30.0,
    ) -> None:
        self._engine = engine
        self._layout = layout
        self._max_batch = max_batch
        self._prefetch = prefetch or max_batch
        self._idle_poll = idle_poll
        self._inline_limit = inline_limit
        self._preview_interval = preview_interval
        self._grace = grace
        self._held: dict[str, _Held] = {}
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()  # terminal event stored
        self._outbox: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._paused = False
        self._stopping = False  # loops check it: a cancel racing a wait_for can be lost on Python 3.11

    async def run(self, nc: Client, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then hand back waiting jobs and let the running batch finish."""
        self._nc = nc
        self._js = nc.jetstream()
        ack_wait = await self._bind(stop)
        if stop.is_set():
            return
        self._local = LocalQueue(self._engine, max_batch=self._max_batch, preview_interval=self._preview_interval)
        await self._local.start(self._on_event)
        subs = [
            await nc.subscribe(self._layout.ready_subjects, cb=self._ring),
            await nc.subscribe(f"$KV.{self._layout.cancel_bucket}.>", cb=self._on_cancel),
            await nc.subscribe(f"$KV.{self._layout.control_bucket}.{PAUSED_KEY}", cb=self._on_control),
        ]
        for puller in self._pullers.values():
            await puller.open()
        pulling = spawn(self._pull_loop(), "pulling jobs")
        background = [
            spawn(self._publish_loop(), "publishing events"),
            spawn(self._heartbeat_loop(ack_wait), "heartbeats"),
        ]
        log.info("worker ready: max_batch=%s prefetch=%s ack_wait=%.1fs", self._max_batch, self._prefetch, ack_wait)
        try:
            await stop.wait()
        finally:
            self._stopping = True
            self._wake.set()
            pulling.cancel()
            await asyncio.gather(pulling, return_exceptions=True)
            self._local.pause()
            await self._hand_back(waiting_only=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained(), self._grace)
            await self._local.close()
            await self._hand_back(waiting_only=False)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for sub in subs:
                await sub.unsubscribe()
            for puller in self._pullers.values():
                await puller.close()

    async def on_reconnect(self) -> None:
        """Look for work again at once (a lingering pull may have been lost)."""
        self._wake.set()

    async def _bind(self, stop: asyncio.Event) -> float:
        """Find the streams and buckets the bot creates; wait for them if the bot has not started yet."""
        while not stop.is_set():
            try:
                infos = [
                    await self._js.consumer_info(self._layout.stream, self._layout.lane_consumer(lane))
                    for lane in LANES
                ]
                self._cancels = await self._js.key_value(self._layout.cancel_bucket)
                self._control = await self._js.key_value(self._layout.control_bucket)
                self._payloads = await self._js.object_store(self._layout.payloads_bucket)
            except NATS_ERRORS as exc:  # NotFoundError until the bot has started once
                log.warning("stream %s not ready (%r): waiting for the bot and the server", self._layout.stream, exc)
                await asyncio.sleep(self._idle_poll)
                continue
            self._pullers = {
                lane: Puller(self._nc, self._layout.stream, self._layout.lane_consumer(lane)) for lane in LANES
            }
            return min(info.config.ack_wait or 30.0 for info in infos)
        return 0.0

    # -- pulling ------------------------------------------------------------------------------------

    async def _ring(self, _msg: Msg) -> None:
        self._wake.set()

    async def _pull_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            pulled = 0
            try:
                if await self._dispatching():
                    pulled = await self._pull_round()
            except NATS_ERRORS as exc:
                log.warning("pulling jobs failed: %r", exc)
            if not pulled:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    async def _dispatching(self) -> bool:
        """Read the pause switch (authoritative; the subscription only makes it quick)."""
        try:
            entry = await self._control.get(PAUSED_KEY)
            self._set_paused(entry.value == b"1")
        except KeyNotFoundError:
            self._set_paused(False)
        return not self._paused

    async def _pull_round(self) -> int:
        """Pull up to the free room, higher lanes first, and hand every new job to the local queue at once."""
        room = self._prefetch - sum(1 for held in self._held.values() if not held.started)
        msgs: list[Msg] = []
        for lane in LANES:
            if room <= 0:
                break
            taken = await self._pullers[lane].take(room)
            room -= len(taken)
            msgs += taken
        requests = [request for msg in msgs if (request := await self._admit(msg)) is not None]
        cancelled = await asyncio.gather(*(self._cancel_requested(r.job_id) for r in requests))
        for request in [r for r, dropped in zip(requests, cancelled) if dropped]:
            self._outbox.put_nowait(Cancelled(request.job_id))
            requests.remove(request)
        if msgs:
            log.debug("pulled %s jobs, %s new: %s", len(msgs), len(requests), [r.job_id for r in requests])
        if requests:
            self._local.pause()
            try:
                for request in requests:
                    await self._local.submit(request)
            finally:
                if not self._paused:
                    self._local.resume()
        return len(msgs)

    async def _admit(self, msg: Msg) -> GenerationRequest | None:
        """Track a pulled message; the request to run, or None (a redelivery we hold or ended, unreadable)."""
        job_id = (msg.headers or {}).get(MSG_ID, "")
        if job_id in self._held:
            self._held[job_id].msg = msg  # our own job, redelivered: ack the newest delivery
            return None
        if job_id in self._ended:  # its terminal event is stored but the ack was lost
            with contextlib.suppress(*NATS_ERRORS):
                await msg.ack()
            return None
        if msg.metadata.num_delivered > 1:
            log.warning("job=%s delivery %s (a worker died or stalled)", job_id, msg.metadata.num_delivered)
        try:
            body, _ = await body_of(self._payloads, msg)
            request = codec.loads_request(body.decode())
        except (ValueError, KeyError, TypeError, NotFoundError) as exc:  # NotFoundError: the bot dropped it
            log.error("job=%s unreadable request: %r", job_id, exc)
            self._held[job_id] = _Held(msg)
            self._outbox.put_nowait(Failed(job_id, FailureKind.INTERNAL, "the worker could not read the request"))
            return None
        except NATS_ERRORS as exc:  # its source image could not be fetched now: let another try come soon
            log.warning("job=%s request not fetched (%r); handing it back", job_id, exc)
            with contextlib.suppress(*NATS_ERRORS):
                await msg.nak(delay=1.0)
            return None
        self._held[job_id] = _Held(msg)
        return request

    async def _cancel_requested(self, job_id: str) -> bool:
        """Whether the bot asked to cancel the job (unknown while offline: the heartbeat asks again)."""
        try:
            await self._cancels.get(token(job_id))
        except (KeyNotFoundError, *NATS_ERRORS):
            return False
        return True

    def _set_paused(self, paused: bool) -> None:
        if paused == self._paused:
            return
        self._paused = paused
        log.info("dispatch %s", "paused" if paused else "resumed")
        if paused:
            self._local.pause()
        else:
            self._local.resume()
            self._wake.set()

    async def _on_control(self, msg: Msg) -> None:
        self._set_paused(msg.data == b"1")

    async def _on_cancel(self, msg: Msg) -> None:
        key = msg.subject.rsplit(".", 1)[-1]
        for job_id in [j for j in self._held if token(j) == key]:
            await self._local.cancel(job_id)

    # -- events -------------------------------------------------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        held = self._held.get(event.job_id)
        if held is None or isinstance(event, Queued):
            return  # a job handed back on shutdown, or a local position (the bot keeps its own)
        if isinstance(event, Started):
            held.started = True
            self._wake.set()
        self._outbox.put_nowait(event)

    async def _publish_loop(self) -> None:
        """Publish what the queue reported, all pending events at once (in order), then ack the ended jobs."""
        while True:
            events = [await self._outbox.get()]
            while not self._outbox.empty():
                events.append(self._outbox.get_nowait())
            await asyncio.gather(*(self._send(event) for event in events))
            for event in events:
                if isinstance(event, TERMINAL_EVENTS):
                    await self._ended_job(event.job_id)

    async def _ended_job(self, job_id: str) -> None:
        """The job's terminal event is stored: acknowledge its message and forget it."""
        self._ended[job_id] = None
        if len(self._ended) > _REMEMBER_ENDED:
            self._ended.popitem(last=False)
        held = self._held.pop(job_id, None)
        if held is not None:
            with contextlib.suppress(*NATS_ERRORS):
                await held.msg.ack()
            if not held.started:
                self._wake.set()  # it held a place in the prefetch
        if not self._held:
            self._idle.set()

    async def _send(self, event: JobEvent) -> None:
        """Publish one event; retry until the server stored it (progress is sent once, unconfirmed)."""
        subject = self._layout.event_subject(event.job_id)
        data = codec.dumps_event(event)
        name = f"{type(event).__name__}-{token(event.job_id)}-{uuid.uuid4().hex}"  # unique: a repeat stays apart
        while True:
            try:
                if isinstance(event, Progressed):
                    await self._nc.publish(subject, data)
                else:
                    body, headers = await offload(
                        self._payloads, name, data, event_headers(event) or {}, limit=self._inline_limit
                    )
                    await self._js.publish(subject, body, headers=headers)
                return
            except NATS_ERRORS as exc:
                log.warning("job=%s cannot publish %s yet: %r", event.job_id, type(event).__name__, exc)
                await asyncio.sleep(1.0)

    async def _heartbeat_loop(self, ack_wait: float) -> None:
        """Every ack_wait/3: tell the server each held job is alive, and catch cancels missed while offline."""
        while True:
            await asyncio.sleep(ack_wait / 3)
            for job_id, held in list(self._held.items()):
                with contextlib.suppress(*NATS_ERRORS):
                    await held.msg.in_progress()
                    if await self._cancel_requested(job_id):
                        await self._local.cancel(job_id)

    async def _drained(self) -> None:
        while self._held:
            self._idle.clear()
            await self._idle.wait()

    async def _hand_back(self, *, waiting_only: bool) -> None:
        """Give jobs back to the stream at once (redelivered to another worker without waiting for ack_wait)."""
        for job_id, held in list(self._held.items()):
            if waiting_only and held.started:
                continue
            del self._held[job_id]
            with contextlib.suppress(*NATS_ERRORS, nats.errors.MsgAlreadyAckdError):
                await held.msg.nak()
