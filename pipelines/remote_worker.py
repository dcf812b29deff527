"""A GPU worker on another machine: pulls jobs from NATS JetStream into a local `LocalQueue`.

One outbound connection; nothing listens. The worker looks for work lane by lane (turbo, then
fast, then relax) whenever fewer than `prefetch` of its jobs wait to start, hands what it pulled to
its `LocalQueue` at once (which batches the compatible ones, by priority and user), and publishes the
queue's events on ``songe.events.<job>``. A job's message is acknowledged only once its terminal event
is stored; until then the worker sends a heartbeat (``+WPI``) every ack_wait/3, so a long job keeps its
message while a crashed worker's message goes to another worker after ack_wait. Results larger than
`inline_limit` travel through the object store. Cancel requests (KV ``songe-cancel``) are checked when
a job is pulled and watched while it is held; pause (KV ``songe-control``) stops pulling and starting.

Run it with ``python -m pipelines worker --nats nats://host:4222 --creds worker.creds`` (see
docs/scale-out.md); ``python -m pipelines.remote_worker --nats URL --fake`` runs a fake engine for
tests and benchmarks. Workers never touch the ledger: results carry the measured GPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, NotFoundError

from pipelines import codec
from pipelines.engine import Engine, EngineOutput, StepCallback
from pipelines.nats_setup import LANES, MSG_ID, OBJECT_HEADER, PAUSED_KEY, Layout, Puller, connect, event_headers, spawn, token
from pipelines.types import TERMINAL_EVENTS, Cancelled, Failed, FailureKind, GenerationRequest, JobEvent, Progressed, Queued, Started
from pipelines.worker import LocalQueue

log = logging.getLogger(__name__)

_NATS_ERRORS = (nats.errors.Error, asyncio.TimeoutError, OSError)
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
        inline_limit: int = 512 * 1024,
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
        background = [spawn(self._publish_loop(), "publishing events"), spawn(self._heartbeat_loop(ack_wait), "heartbeats")]
        log.info("worker ready: max_batch=%s prefetch=%s ack_wait=%.1fs", self._max_batch, self._prefetch, ack_wait)
        try:
            await stop.wait()
        finally:
            self._stopping = True
            self._wake.set()
            pulling.cancel()
            await asyncio.gather(pulling, return_exceptions=True)
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
                infos = [await self._js.consumer_info(self._layout.stream, self._layout.lane_consumer(lane)) for lane in LANES]
                self._cancels = await self._js.key_value(self._layout.cancel_bucket)
                self._control = await self._js.key_value(self._layout.control_bucket)
                self._results = await self._js.object_store(self._layout.results_bucket)
            except NotFoundError:  # BucketNotFoundError is one
                log.warning("stream %s is not set up yet: waiting for the bot to start", self._layout.stream)
                await asyncio.sleep(self._idle_poll)
                continue
            self._pullers = {lane: Puller(self._nc, self._layout.stream, self._layout.lane_consumer(lane)) for lane in LANES}
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
            except _NATS_ERRORS as exc:
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
        """Track a pulled message; the request to run, or None (a redelivery we hold, cancelled, unreadable)."""
        job_id = (msg.headers or {}).get(MSG_ID, "")
        if job_id in self._held:
            self._held[job_id].msg = msg  # our own job, redelivered: ack the newest delivery
            return None
        if job_id in self._ended:  # its terminal event is stored but the ack was lost
            with contextlib.suppress(*_NATS_ERRORS):
                await msg.ack()
            return None
        if msg.metadata.num_delivered > 1:
            log.warning("job=%s delivery %s (a worker died or stalled)", job_id, msg.metadata.num_delivered)
        try:
            request = codec.loads_request(msg.data.decode())
        except (ValueError, KeyError, TypeError) as exc:
            log.error("job=%s unreadable request: %r", job_id, exc)
            self._held[job_id] = _Held(msg)
            self._outbox.put_nowait(Failed(job_id, FailureKind.INTERNAL, "the worker could not read the request"))
            return None
        self._held[job_id] = _Held(msg)
        if await self._cancel_requested(job_id):
            self._outbox.put_nowait(Cancelled(job_id))
            return None
        return request

    async def _cancel_requested(self, job_id: str) -> bool:
        try:
            await self._cancels.get(token(job_id))
        except KeyNotFoundError:
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
        while True:
            event = await self._outbox.get()
            await self._send(event)
            log.debug("job=%s %s sent", event.job_id, type(event).__name__)
            if isinstance(event, TERMINAL_EVENTS):
                self._ended[event.job_id] = None
                if len(self._ended) > _REMEMBER_ENDED:
                    self._ended.popitem(last=False)
                held = self._held.pop(event.job_id, None)
                if held is not None:
                    with contextlib.suppress(*_NATS_ERRORS):
                        await held.msg.ack()
                self._wake.set()
                if not self._held:
                    self._idle.set()

    async def _send(self, event: JobEvent) -> None:
        """Publish one event; retry until the server stored it (progress is sent once, unconfirmed)."""
        subject = self._layout.event_subject(event.job_id)
        data = codec.dumps_event(event)
        headers = event_headers(event) or {}
        while True:
            try:
                if isinstance(event, Progressed):
                    await self._nc.publish(subject, data)
                elif len(data) > self._inline_limit:
                    name = f"{token(event.job_id)}-{uuid.uuid4().hex}"
                    await self._results.put(name, data)
                    await self._js.publish(subject, b"", headers={**headers, OBJECT_HEADER: name})
                else:
                    await self._js.publish(subject, data, headers=headers)
                return
            except _NATS_ERRORS as exc:
                log.warning("job=%s cannot publish %s yet: %r", event.job_id, type(event).__name__, exc)
                await asyncio.sleep(1.0)

    async def _heartbeat_loop(self, ack_wait: float) -> None:
        """Every ack_wait/3: tell the server each held job is alive, and catch cancels missed while offline."""
        while True:
            await asyncio.sleep(ack_wait / 3)
            for job_id, held in list(self._held.items()):
                with contextlib.suppress(*_NATS_ERRORS):
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
            with contextlib.suppress(*_NATS_ERRORS, nats.errors.MsgAlreadyAckdError):
                await held.msg.nak()


async def run_worker(
    url: str,
    engine: Engine,
    *,
    creds: str | Path | None = None,
    user: str | None = None,
    password: str | None = None,
    stream: str = "SONGE",
    max_batch: int = 4,
    prefetch: int | None = None,
    idle_poll: float = 1.0,
    inline_limit: int = 512 * 1024,
    preview_interval: float = 1.0,
    reconnect_wait: float = 2.0,
    grace: float = 30.0,
    stop: asyncio.Event | None = None,
    name: str = "songe-worker",
) -> None:
    """Connect to `url` and serve jobs with `engine` until `stop` is set (forever without one).

    `prefetch`: jobs pulled ahead while a batch runs (default `max_batch`). `idle_poll`: seconds between
    looks at the queue when nothing rang (redeliveries do not ring). `grace`: seconds a stopping worker
    lets its running batch finish before handing it back.
    """
    stop = stop or asyncio.Event()
    layout = Layout(stream)
    worker = RemoteWorker(
        engine, layout=layout, max_batch=max_batch, prefetch=prefetch, idle_poll=idle_poll,
        inline_limit=inline_limit, preview_interval=preview_interval, grace=grace,
    )
    while True:
        try:
            nc = await connect(
                url, name=name, creds=creds, user=user, password=password, reconnect_wait=reconnect_wait,
                on_reconnect=worker.on_reconnect, inbox_prefix=layout.worker_inbox,
            )
            break
        except _NATS_ERRORS as exc:
            log.warning("cannot reach %s (%r); retrying", url, exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), reconnect_wait)
            if stop.is_set():
                return
    try:
        await worker.run(nc, stop)
    finally:
        await nc.close()


class _CrashOnPrompt:
    """Test aid: an engine that kills its process when a batch holds `prompt` (a poison job)."""

    def __init__(self, engine: Engine, prompt: str) -> None:
        self._engine = engine
        self._prompt = prompt
        self.model = engine.model

    def run(self, batch: Sequence[GenerationRequest], on_step: StepCallback) -> list[EngineOutput]:
        if any(request.prompt == self._prompt for request in batch):
            log.error("crashing on purpose: prompt %r", self._prompt)
            os._exit(70)
        return self._engine.run(batch, on_step)


EngineFactory = Callable[[argparse.Namespace], Engine]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's command-line options (shared by `python -m pipelines worker` and this module)."""
    parser.add_argument("--nats", required=True, metavar="URL", help="NATS server(s), e.g. nats://gpu-hub:4222")
    parser.add_argument("--creds", type=Path, help="NATS credentials file (user JWT + seed)")
    parser.add_argument("--user", help="NATS user (with --password-file)")
    parser.add_argument("--password-file", type=Path, help="file holding the NATS user's password")
    parser.add_argument("--stream", default="SONGE", help="jobs stream name (default SONGE)")
    parser.add_argument("--max-batch", type=int, default=4, help="most compatible jobs per pipeline call")
    parser.add_argument("--prefetch", type=int, help="jobs pulled ahead while a batch runs (default: max batch)")
    parser.add_argument("--model", default="", help="model preset, diffusers id or folder")
    parser.add_argument("--name", default="songe-worker", help="connection name shown by the server")
    parser.add_argument("--idle-poll", type=float, default=1.0, help="seconds between looks at an idle queue")
    fake = parser.add_argument_group("tests and benchmarks only")
    fake.add_argument("--fake", action="store_true", help="use pipelines.fake.FakeEngine instead of a model")
    fake.add_argument("--fake-seconds-per-batch", type=float, default=0.0)
    fake.add_argument("--fake-seconds-per-step", type=float, default=0.0)
    fake.add_argument("--crash-on-prompt", metavar="TEXT", help="exit at once on a job with this prompt")


def add_worker_subcommand(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    *,
    engine_factory: EngineFactory | None = None,
) -> argparse.ArgumentParser:
    """Add ``worker`` to a CLI; `engine_factory(args)` builds the real engine (``args.func(args)`` runs it)."""
    parser: argparse.ArgumentParser = subparsers.add_parser("worker", help="serve jobs from NATS JetStream")
    add_arguments(parser)
    parser.set_defaults(func=lambda args: serve(args, engine_factory))
    return parser


def serve(args: argparse.Namespace, engine_factory: EngineFactory | None = None) -> int:
    """Build the engine the arguments ask for and run the worker until SIGINT/SIGTERM."""
    if args.fake:
        from pipelines.fake import FakeEngine

        engine: Engine = FakeEngine(
            seconds_per_batch=args.fake_seconds_per_batch, seconds_per_step=args.fake_seconds_per_step,
            model=args.model or "fake",
        )
    elif engine_factory is not None:
        engine = engine_factory(args)
    else:
        raise SystemExit("no engine: pass --fake, or run the worker through `python -m pipelines worker`")
    if args.crash_on_prompt:
        engine = _CrashOnPrompt(engine, args.crash_on_prompt)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        password = args.password_file.read_text().strip() if args.password_file else None
        await run_worker(
            args.nats, engine, creds=args.creds, user=args.user, password=password, stream=args.stream, max_batch=args.max_batch,
            prefetch=args.prefetch, idle_poll=args.idle_poll, stop=stop, name=args.name,
        )

    asyncio.run(main())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.remote_worker", description=__doc__.split("\n")[0])
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
