"""One contract for every `GenerationQueue`: the in-process `LocalQueue` and `NatsQueue` with remote workers.

Each test runs twice: against `LocalQueue(FakeEngine)` and against `NatsQueue` talking to a real
nats-server (JetStream, file store) with a `pipelines.remote_worker` serving the same fake engine
in-process. Orderings are made deterministic by pausing the queue while jobs are submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from pipelines.fake import FakeEngine, RecordingSink, fake_request
from pipelines.nats_queue import NatsQueue
from pipelines.queue import GenerationQueue
from pipelines.remote_worker import run_worker
from pipelines.types import (
    TERMINAL_EVENTS,
    Cancelled,
    Finished,
    GenerationRequest,
    JobEvent,
    Lane,
    Started,
)
from pipelines.worker import LocalQueue
from tests.support.nats_server import NatsServer, require_nats_server


def job(
    job_id: str, *, user: int = 1, lane: Lane = Lane.FAST, size: int = 64, steps: int = 2, **fields: Any
) -> GenerationRequest:
    """A small request; jobs of equal size and steps can share a batch."""
    return fake_request(job_id, user_id=user, lane=lane, width=size, height=size, steps=steps, count=2, **fields)


def of(sink: RecordingSink, job_id: str, kind: type | tuple[type, ...]) -> list[JobEvent]:
    return [e for e in sink.of(job_id) if isinstance(e, kind)]


def order(sink: RecordingSink, kind: type) -> list[str]:
    """Job ids in the order their `kind` events arrived."""
    return [e.job_id for e in sink.events if isinstance(e, kind)]


async def ended(sink: RecordingSink, job_id: str, timeout: float = 20.0) -> JobEvent:
    """The job's terminal event, once it came."""
    (event,) = await sink.done(job_id, timeout=timeout)
    return event


@dataclass
class Harness:
    queue: GenerationQueue
    engine: FakeEngine
    events: RecordingSink


class MakeQueue(Protocol):
    def __call__(self, engine: FakeEngine, *, max_batch: int = 4, per_user: int = 4) -> Awaitable[Harness]: ...


@contextlib.asynccontextmanager
async def nats_stack(
    url: str, engines: list[FakeEngine], *, per_user: int = 4, ack_wait: float = 2.0, **worker_options: Any
) -> AsyncIterator[tuple[NatsQueue, RecordingSink]]:
    """A started NatsQueue and one in-process remote worker per engine; all stopped on exit."""
    events = RecordingSink()
    queue = NatsQueue(url, ack_wait=ack_wait, max_queued_per_user=per_user, reconnect_wait=0.2, timeout=2.0)
    await queue.start(events)
    stop = asyncio.Event()
    options = {"idle_poll": 0.2, "reconnect_wait": 0.2, "grace": 5.0, **worker_options}
    workers = [asyncio.create_task(run_worker(url, engine, stop=stop, **options)) for engine in engines]
    try:
        yield queue, events
    finally:
        stop.set()
        await asyncio.gather(*workers)
        await queue.close()


@pytest.fixture(params=["local", "nats"])
async def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeQueue]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(engine: FakeEngine, *, max_batch: int = 4, per_user: int = 4) -> Harness:
            if request.param == "local":
                events = RecordingSink()
                local = LocalQueue(engine, max_batch=max_batch)
                await local.start(events)
                stack.push_async_callback(local.close)
                return Harness(local, engine, events)
            require_nats_server()
            server = stack.enter_context(NatsServer(tmp_path / "nats"))
            queue, events = await stack.enter_async_context(
                nats_stack(server.url, [engine], max_batch=max_batch, per_user=per_user)
            )
            return Harness(queue, engine, events)

        yield make


async def test_round_trip_returns_the_images_and_the_gpu_time(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine())
    request = job("j1")
    await h.queue.submit(request)
    end = await ended(h.events, "j1")
    assert isinstance(end, Finished)
    assert end.result.job_id == "j1"
    assert len(end.result.images) == request.count
    assert all(image.startswith(b"\x89PNG") for image in end.result.images)
    assert (end.result.width, end.result.height) == (request.width, request.height)
    assert end.result.gpu_seconds >= 0
    assert len(of(h.events, "j1", Started)) == 1
    assert len(of(h.events, "j1", TERMINAL_EVENTS)) == 1


async def test_fast_jobs_start_before_relax_jobs(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine(), max_batch=1)
    h.queue.pause()
    await h.queue.submit(job("relax", lane=Lane.RELAX))
    await h.queue.submit(job("fast", lane=Lane.FAST))
    await h.queue.submit(job("turbo", lane=Lane.TURBO))
    h.queue.resume()
    await h.events.done("relax", "fast", "turbo")
    assert order(h.events, Started) == ["turbo", "fast", "relax"]


async def test_batches_join_only_compatible_jobs(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine(), max_batch=4)
    h.queue.pause()
    requests = [job("a1", size=64), job("b1", size=96), job("a2", size=64, user=2), job("b2", size=96, steps=3)]
    for request in requests:
        await h.queue.submit(request)
    h.queue.resume()
    await h.events.done(*(r.job_id for r in requests))
    keys = {r.job_id: r.batch_key for r in requests}
    batches = h.engine.batches
    assert all(len({keys[j] for j in batch}) == 1 for batch in batches), batches
    assert sorted(sorted(b) for b in batches) == [["a1", "a2"], ["b1"], ["b2"]]


async def test_cancel_of_a_queued_job_ends_it_cancelled_without_running(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine())
    h.queue.pause()
    await h.queue.submit(job("doomed"))
    assert await h.queue.cancel("doomed") is True
    assert isinstance(await ended(h.events, "doomed"), Cancelled)
    h.queue.resume()
    await h.queue.submit(job("after"))
    assert isinstance(await ended(h.events, "after"), Finished)
    assert of(h.events, "doomed", Started) == []
    assert len(of(h.events, "doomed", TERMINAL_EVENTS)) == 1
    assert all("doomed" not in batch for batch in h.engine.batches)


async def test_cancel_of_a_running_job_interrupts_it(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine(seconds_per_step=0.05))
    await h.queue.submit(job("long", steps=400))  # 20 s unless interrupted
    await h.events.wait_for(lambda: of(h.events, "long", Started) != [])
    assert await h.queue.cancel("long") is True
    assert isinstance(await ended(h.events, "long", timeout=10), Cancelled)
    await h.queue.submit(job("next"))
    assert isinstance(await ended(h.events, "next"), Finished)
    assert len(of(h.events, "long", TERMINAL_EVENTS)) == 1


async def test_cancel_of_an_unknown_job_returns_false(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine())
    assert await h.queue.cancel("nobody") is False


async def test_submit_is_idempotent_on_the_job_id(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine())
    h.queue.pause()
    await h.queue.submit(job("once"))
    await h.queue.submit(job("once"))
    h.queue.resume()
    await ended(h.events, "once")
    await h.queue.submit(job("barrier"))
    await ended(h.events, "barrier")
    assert len(of(h.events, "once", Started)) == 1
    assert len(of(h.events, "once", TERMINAL_EVENTS)) == 1
    assert sum(batch.count("once") for batch in h.engine.batches) == 1


async def test_a_newcomer_does_not_wait_behind_a_heavy_users_backlog(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine(), max_batch=1, per_user=1)
    h.queue.pause()
    for i in range(4):
        await h.queue.submit(job(f"heavy{i}", user=1))
    await h.queue.submit(job("newcomer", user=2))
    h.queue.resume()
    await h.events.done("newcomer", *(f"heavy{i}" for i in range(4)))
    assert order(h.events, Started).index("newcomer") <= 1, order(h.events, Started)


async def test_position_and_depth_count_the_waiting_jobs_by_priority(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine())
    h.queue.pause()
    for request in [job("f1"), job("f2"), job("r1", lane=Lane.RELAX), job("t1", lane=Lane.TURBO)]:
        await h.queue.submit(request)
    assert await h.queue.depth() == 4
    positions = {j: await h.queue.position(j) for j in ("t1", "f1", "f2", "r1")}
    assert [p.position for p in positions.values() if p] == [1, 2, 3, 4]
    assert all(p is not None and p.total == 4 for p in positions.values())
    assert await h.queue.position("nobody") is None
    h.queue.resume()
    await h.events.done("t1", "f1", "f2", "r1")
    assert await h.queue.position("f1") is None
