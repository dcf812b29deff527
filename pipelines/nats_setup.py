"""Names, JetStream configuration and small helpers shared by `NatsQueue` (bot) and remote workers.

Everything lives under one prefix derived from the stream name (``SONGE`` -> ``songe``):

    stream SONGE          songe.jobs.<lane>.<class>   work queue of requests, Nats-Msg-Id = job id;
                          republished headers-only on songe.ready.<lane>.<class> (the workers' doorbell)
    consumers             jobs-turbo, jobs-fast, jobs-relax: one durable pull consumer per lane, shared
                          by every worker (ack_wait, max_deliver)
    stream SONGE_EVENTS   songe.events.<job>   job events from workers (terminal ones with Nats-Msg-Id
                          "<job>:end", so the server keeps one terminal event per job), and the server's
                          MAX_DELIVERIES advisories of the lane consumers; consumer "bot"
    KV songe-cancel       key <job> -> cancel request, read by workers
    KV songe-control      key "paused" -> b"1" / b"0"
    object store songe-payloads  bodies over 512 KiB (source images, results), referenced by header
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError
from nats.js.object_store import ObjectStore

from pipelines.types import TERMINAL_EVENTS, GenerationRequest, JobEvent, Lane, Started

log = logging.getLogger(__name__)

NATS_ERRORS = (nats.errors.Error, asyncio.TimeoutError, OSError)
"""What a lost or refused connection raises (nats.js errors derive from nats.errors.Error)."""

LANES = (Lane.TURBO, Lane.FAST, Lane.RELAX)
"""The order in which workers look for work."""

MSG_ID = "Nats-Msg-Id"
OBJECT_HEADER = "Songe-Object"
"""Set on a message whose body (a large request or event) lives in the object store under this name."""
INLINE_LIMIT = 512 * 1024
"""Bodies larger than this go through the object store (the server's max_payload is 1 MiB)."""
PAUSED_KEY = "paused"

_TOKEN = re.compile(r"[A-Za-z0-9_=-]{1,64}")


def token(job_id: str) -> str:
    """A subject token and KV key for a job id (the id itself when it is safe, else a digest)."""
    if _TOKEN.fullmatch(job_id):
        return job_id
    return "h" + hashlib.sha256(job_id.encode()).hexdigest()[:32]


def class_token(request: GenerationRequest) -> str:
    """A short digest of `request.batch_key`: jobs with equal tokens can share a batch."""
    parts = [getattr(p, "value", p) for p in request.batch_key]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def event_headers(event: JobEvent) -> dict[str, str] | None:
    """Message-id headers that let the server keep one `Started` and one terminal event per job."""
    if isinstance(event, TERMINAL_EVENTS):
        return {MSG_ID: f"{event.job_id}:end"}
    if isinstance(event, Started):
        return {MSG_ID: f"{event.job_id}:started"}
    return None


@dataclass(frozen=True)
class Layout:
    """The names of every JetStream object of one deployment, derived from the jobs stream's name."""

    stream: str = "SONGE"

    @property
    def prefix(self) -> str:
        return self.stream.lower()

    @property
    def events_stream(self) -> str:
        return f"{self.stream}_EVENTS"

    @property
    def events_consumer(self) -> str:
        return "bot"

    @property
    def cancel_bucket(self) -> str:
        return f"{self.prefix}-cancel"

    @property
    def control_bucket(self) -> str:
        return f"{self.prefix}-control"

    @property
    def payloads_bucket(self) -> str:
        return f"{self.prefix}-payloads"

    @property
    def ready_subjects(self) -> str:
        return f"{self.prefix}.ready.>"

    @property
    def worker_inbox(self) -> str:
        """Workers' reply subjects live under this prefix, so their permissions need not cover other inboxes."""
        return f"_INBOX_{self.prefix}_worker"

    @property
    def advisories(self) -> str:
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.stream}.*"

    def lane_consumer(self, lane: Lane) -> str:
        return f"jobs-{lane.value}"

    def job_subject(self, request: GenerationRequest) -> str:
        return f"{self.prefix}.jobs.{request.lane.value}.{class_token(request)}"

    def event_subject(self, job_id: str) -> str:
        return f"{self.prefix}.events.{token(job_id)}"


async def connect(
    url: str,
    *,
    name: str,
    creds: str | Path | None = None,
    user: str | None = None,
    password: str | None = None,
    reconnect_wait: float = 2.0,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    inbox_prefix: str = "_INBOX",
) -> Client:
    """Connect, trying each server a few times; once connected, reconnect forever after any loss.

    Raises a `NATS_ERRORS` error when no server answers. `on_reconnect` runs after each reconnect.
    """

    async def error_cb(exc: Exception) -> None:
        log.warning("nats %s: %s", name, exc)

    async def disconnected_cb() -> None:
        log.warning("nats %s: disconnected", name)

    async def reconnected_cb() -> None:
        log.info("nats %s: reconnected", name)
        if on_reconnect is not None:
            await on_reconnect()

    nc = await nats.connect(
        servers=url,
        name=name,
        user_credentials=str(creds) if creds else None,
        user=user,
        password=password,
        max_reconnect_attempts=3,
        reconnect_time_wait=reconnect_wait,
        error_cb=error_cb,
        disconnected_cb=disconnected_cb,
        reconnected_cb=reconnected_cb,
        inbox_prefix=inbox_prefix,
    )
    nc.options["max_reconnect_attempts"] = -1  # read at each reconnect; -1 from the start would retry connect forever
    return nc


async def _ensure_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:  # exists with another configuration: bring it to this one
        await js.update_stream(config)


async def ensure_layout(
    js: JetStreamContext,
    layout: Layout,
    *,
    ack_wait: float,
    max_deliver: int,
    duplicate_window: float,
    keep_seconds: float = 7 * 86400,
) -> None:
    """Create or update every stream, consumer and bucket of `layout` (the bot does this; workers only bind)."""
    jobs = f"{layout.prefix}.jobs.>"
    await _ensure_stream(
        js,
        api.StreamConfig(
            name=layout.stream,
            subjects=[jobs],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            duplicate_window=duplicate_window,
            max_age=keep_seconds,
            allow_direct=True,
            republish=api.RePublish(src=jobs, dest=layout.ready_subjects, headers_only=True),
        ),
    )
    for lane in LANES:
        await js.add_consumer(
            layout.stream,
            api.ConsumerConfig(
                durable_name=layout.lane_consumer(lane),
                filter_subject=f"{layout.prefix}.jobs.{lane.value}.>",
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=ack_wait,
                max_deliver=max_deliver,
                max_ack_pending=-1,
            ),
        )
    await _ensure_stream(
        js,
        api.StreamConfig(
            name=layout.events_stream,
            subjects=[f"{layout.prefix}.events.>", layout.advisories],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            duplicate_window=duplicate_window,
            max_age=keep_seconds,
        ),
    )
    await js.add_consumer(
        layout.events_stream,
        api.ConsumerConfig(
            durable_name=layout.events_consumer,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=ack_wait,  # an event the bot took but did not record comes again after this
            max_ack_pending=-1,
        ),
    )
    storage = api.StorageType.FILE
    await js.create_key_value(bucket=layout.cancel_bucket, ttl=keep_seconds, storage=storage)
    await js.create_key_value(bucket=layout.control_bucket, storage=storage)
    await js.create_object_store(layout.payloads_bucket, ttl=keep_seconds, storage=storage)


def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A background task whose unexpected failure is logged rather than kept silently until shutdown."""

    def report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped", name, exc_info=task.exception())

    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(report)
    return task


async def offload(
    store: ObjectStore, name: str, data: bytes, headers: dict[str, str], *, limit: int
) -> tuple[bytes, dict[str, str]]:
    """A message's body and headers for `data`: itself, or a reference to object `name` when over `limit`."""
    if len(data) <= limit:
        return data, headers
    await store.put(name, data)
    return b"", {**headers, OBJECT_HEADER: name}


async def body_of(store: ObjectStore, msg: Msg) -> tuple[bytes, str | None]:
    """A message's body, fetched from the object store when it holds a reference; and the object's name."""
    name = (msg.headers or {}).get(OBJECT_HEADER)
    if name is None:
        return msg.data, None
    return (await store.get(name)).data or b"", name


def status_of(msg: Msg) -> str | None:
    """The status code of a JetStream control message (404, 408, 409, 100), None for a data message."""
    return msg.headers.get("Status") if msg.headers else None


class Puller:
    """Explicit pull requests on one durable consumer, answered on a private inbox.

    `take` asks for what is there right now (no_wait); `stream` keeps one lingering request open
    and yields messages as they arrive.
    """

    def __init__(self, nc: Client, stream: str, consumer: str) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._closed = False

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox)

    async def close(self) -> None:
        self._closed = True
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def take(self, batch: int, *, timeout: float = 5.0) -> list[Msg]:
        """Up to `batch` messages that are available now."""
        assert self._sub is not None
        await self._nc.publish(self._next, json.dumps({"batch": batch, "no_wait": True}).encode(), reply=self._inbox)
        msgs: list[Msg] = []
        while len(msgs) < batch:
            msg = await self._sub.next_msg(timeout=timeout)
            if status_of(msg) is None:
                msgs.append(msg)
            elif status_of(msg) != "100":
                break
        return msgs

    async def stream(self, *, batch: int = 256, expires: float = 2.0) -> AsyncIterator[Msg]:
        """Messages as they arrive, renewing the lingering request when it is used up or expires."""
        assert self._sub is not None
        request = json.dumps({"batch": batch, "expires": int(expires * 1e9)}).encode()
        while not self._closed:
            await self._nc.publish(self._next, request, reply=self._inbox)
            for _ in range(batch):
                try:
                    msg = await self._sub.next_msg(timeout=expires + 1.0)
                except nats.errors.TimeoutError:
                    break  # the request was lost (reconnect): ask again
                if status_of(msg) is None:
                    yield msg
                elif status_of(msg) != "100":
                    break
