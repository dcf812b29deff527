"""`LocalQueue` with a `FakeEngine`: order, batching, events, cancel, positions, GPU time."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from PIL import Image

from pipelines.engine import Engine
from pipelines.fake import FakeEngine, RecordingSink, fake_colour, fake_request
from pipelines.images import read_png_metadata
from pipelines.seeds import image_seeds
from pipelines.types import Cancelled, Finished, Lane, Progressed, Queued, Started
from pipelines.worker import LocalQueue

OpenQueue = Callable[..., Awaitable[tuple[LocalQueue, RecordingSink]]]


@pytest.fixture
async def open_queue() -> AsyncIterator[OpenQueue]:
    """Starts `LocalQueue(engine, **options)` with a recording sink (paused if asked); closes it after the test."""
    queues: list[LocalQueue] = []

    async def open_(engine: Engine, *, paused: bool = False, **options: object) -> tuple[LocalQueue, RecordingSink]:
        queue = LocalQueue(engine, position_interval=0.0, **options)  # type: ignore[arg-type]
        if paused:
            queue.pause()
        sink = RecordingSink()
        await queue.start(sink)
        queues.append(queue)
        return queue, sink

    yield open_
    for queue in queues:
        await queue.close()


class StepGate:
    """A `FakeEngine.before_step` hook that holds the GPU thread at one step until released."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.reached = threading.Event()
        self.release = threading.Event()
        self.seen: list[int] = []

    def __call__(self, step: int) -> None:
        self.seen.append(step)
        if step == self.step:
            self.reached.set()
            self.release.wait(10)

    async def wait_reached(self) -> None:
        assert await asyncio.to_thread(self.reached.wait, 10)


class ManualClock:
    """A clock that only moves when told; its `sleep` moves it (for `FakeEngine(sleep=...)`)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_a_job_finishes_with_one_png_per_seed_carrying_its_metadata(open_queue: OpenQueue) -> None:
    queue, sink = await open_queue(FakeEngine())
    request = fake_request("j1", prompt="a red fox", seed=41, count=4, width=96, height=64)
    await queue.submit(request)
    (event,) = await sink.done("j1")
    assert isinstance(event, Finished)
    result = event.result
    assert result.seeds == tuple(image_seeds(41, 4)) and (result.width, result.height) == (96, 64)
    for png, seed in zip(result.images, result.seeds):
        image = Image.open(io.BytesIO(png))
        assert image.format == "PNG" and image.getpixel((5, 5)) == fake_colour("a red fox", seed)
        meta = read_png_metadata(png)
        assert (meta["prompt"], meta["seed"], meta["job_id"], meta["model"]) == ("a red fox", str(seed), "j1", "fake")
    kinds = [type(e) for e in sink.of("j1")]
    assert kinds[:2] == [Queued, Started] and kinds[-1] is Finished and Progressed in kinds


async def test_lanes_run_turbo_then_fast_then_relax(open_queue: OpenQueue) -> None:
    engine = FakeEngine()
    queue, sink = await open_queue(engine, paused=True)
    for job_id, lane in (("relax", Lane.RELAX), ("fast", Lane.FAST), ("turbo", Lane.TURBO)):
        await queue.submit(fake_request(job_id, lane=lane))
    queue.resume()
    await sink.done("relax", "fast", "turbo")
    assert engine.batches == [("turbo",), ("fast",), ("relax",)]


@pytest.mark.parametrize("max_batch", [1, 4])
async def test_one_users_backlog_does_not_hold_back_anothers_first_job(open_queue: OpenQueue, max_batch: int) -> None:
    engine = FakeEngine()
    queue, sink = await open_queue(engine, paused=True, max_batch=max_batch)
    jobs = [f"a{i}" for i in range(10)]
    for job_id in jobs:
        await queue.submit(fake_request(job_id, user_id=1))
    await queue.submit(fake_request("b0", user_id=2))
    queue.resume()
    await sink.done(*jobs, "b0")
    assert any("b0" in batch for batch in engine.batches[:2])


async def test_batches_join_only_compatible_jobs_up_to_max_batch(open_queue: OpenQueue) -> None:
    engine = FakeEngine()
    queue, sink = await open_queue(engine, paused=True, max_batch=3)
    requests = [fake_request(f"j{i}", user_id=i % 3, width=64 if i % 4 else 128, steps=4 + i % 2) for i in range(20)]
    for request in requests:
        await queue.submit(request)
    queue.resume()
    await sink.done(*(r.job_id for r in requests))
    keys = {r.job_id: r.batch_key for r in requests}
    assert all(1 <= len(batch) <= 3 and len({keys[j] for j in batch}) == 1 for batch in engine.batches)
    assert sorted(j for batch in engine.batches for j in batch) == sorted(keys)
    assert max(len(batch) for batch in engine.batches) == 3


async def test_a_job_not_yet_due_runs_only_when_nothing_due_waits(open_queue: OpenQueue) -> None:
    engine = FakeEngine()
    queue, sink = await open_queue(engine, paused=True)
    later = time.time() + 3600
    await queue.submit(fake_request("late", lane=Lane.RELAX, not_before=later))
    await queue.submit(fake_request("due", lane=Lane.RELAX, user_id=2, width=128))
    queue.resume()
    await sink.done("late", "due")
    assert engine.batches == [("due",), ("late",)]
    await queue.submit(fake_request("alone", lane=Lane.RELAX, not_before=later))
    await sink.done("alone")


async def test_cancelling_a_queued_job_ends_it_at_once(open_queue: OpenQueue) -> None:
    engine = FakeEngine()
    queue, sink = await open_queue(engine, paused=True)
    await queue.submit(fake_request("keep"))
    await queue.submit(fake_request("drop"))
    assert await queue.cancel("drop") is True
    assert await sink.done("drop") == [Cancelled("drop")]
    assert await queue.depth() == 1 and await queue.position("drop") is None
    assert await queue.cancel("drop") is False and await queue.cancel("unknown") is False
    queue.resume()
    await sink.done("keep")
    assert engine.attempts == [("keep",)]


async def test_cancelling_a_job_running_alone_stops_it_at_the_next_step(open_queue: OpenQueue) -> None:
    gate = StepGate(3)
    engine = FakeEngine(before_step=gate)
    queue, sink = await open_queue(engine)
    await queue.submit(fake_request("j1", steps=50))
    await gate.wait_reached()
    assert await queue.cancel("j1") is True
    assert await sink.done("j1") == [Cancelled("j1")]
    gate.release.set()
    await queue.submit(fake_request("next", steps=1))  # served after the interrupted batch
    await sink.done("next")
    assert gate.seen == [1, 2, 3, 1]  # j1 stopped in step 3's callback, then "next" ran its one step
    assert engine.attempts == [("j1",), ("next",)] and engine.batches == [("next",)]


async def test_cancelling_a_job_sharing_its_batch_lets_the_others_finish(open_queue: OpenQueue) -> None:
    gate = StepGate(2)
    engine = FakeEngine(before_step=gate)
    queue, sink = await open_queue(engine, paused=True)
    await queue.submit(fake_request("stay", steps=6))
    await queue.submit(fake_request("leave", user_id=2, steps=6))
    queue.resume()
    await gate.wait_reached()
    assert await queue.cancel("leave") is True
    assert await sink.done("leave") == [Cancelled("leave")]  # reported while the batch still runs
    gate.release.set()
    (finished,) = await sink.done("stay")
    assert isinstance(finished, Finished)
    assert engine.batches == [("stay", "leave")] and engine.last_step == 6
    assert [type(e) for e in sink.of("leave")][-1] is Cancelled


async def test_submit_is_idempotent_on_the_job_id(open_queue: OpenQueue) -> None:
    engine = FakeEngine()
    queue, sink = await open_queue(engine, paused=True)
    await queue.submit(fake_request("j1"))
    await queue.submit(fake_request("j1", prompt="another prompt"))
    assert await queue.depth() == 1
    queue.resume()
    await sink.done("j1")
    await queue.submit(fake_request("j1"))
    await queue.submit(fake_request("j2"))
    await sink.done("j2")
    assert engine.attempts.count(("j1",)) == 1 and await queue.depth() == 0
    assert [type(e) for e in sink.of("j1")].count(Queued) == 1


async def test_position_and_depth_follow_the_fair_order(open_queue: OpenQueue) -> None:
    queue, sink = await open_queue(FakeEngine(), paused=True)
    for job_id, user in (("a1", 1), ("a2", 1), ("b1", 2)):
        await queue.submit(fake_request(job_id, user_id=user))
    positions = {j: await queue.position(j) for j in ("a1", "a2", "b1")}
    assert {j: (p.position, p.total) for j, p in positions.items() if p} == {"a1": (1, 3), "b1": (2, 3), "a2": (3, 3)}
    assert await queue.depth() == 3 and await queue.position("unknown") is None
    queue.resume()
    await sink.done("a1", "a2", "b1")
    assert await queue.depth() == 0 and await queue.position("a1") is None


async def test_queued_events_come_on_submit_and_when_a_position_moves(open_queue: OpenQueue) -> None:
    queue, sink = await open_queue(FakeEngine(), paused=True)
    for job_id in ("j1", "j2", "j3"):
        await queue.submit(fake_request(job_id))
    await queue.cancel("j1")
    await sink.wait_for(lambda: len([e for e in sink.events if isinstance(e, Queued)]) >= 5)
    queued = [e for e in sink.events if isinstance(e, Queued)]
    assert queued == [
        Queued("j1", 1, 1),
        Queued("j2", 2, 2),
        Queued("j3", 3, 3),
        Queued("j2", 1, 2),
        Queued("j3", 2, 2),
    ]


async def test_pause_starts_no_batch_until_resume(open_queue: OpenQueue) -> None:
    engine = FakeEngine()
    queue, sink = await open_queue(engine, paused=True)
    await queue.submit(fake_request("j1"))
    await asyncio.sleep(0.05)  # a chance for a broken pause to start the batch
    assert engine.attempts == [] and await queue.position("j1") is not None
    queue.resume()
    await sink.done("j1")


async def test_the_event_loop_keeps_running_while_a_batch_runs(open_queue: OpenQueue) -> None:
    engine = FakeEngine(seconds_per_batch=0.2)
    queue, sink = await open_queue(engine)
    ticks_while_running = 0

    async def heartbeat() -> None:
        nonlocal ticks_while_running
        while True:
            ticks_while_running += engine.running
            await asyncio.sleep(0)

    beating = asyncio.create_task(heartbeat())
    await queue.submit(fake_request("slow"))
    await sink.done("slow")
    beating.cancel()
    assert ticks_while_running > 0


async def test_progress_not_yet_delivered_is_replaced_by_the_latest(open_queue: OpenQueue) -> None:
    engine = FakeEngine()
    queue, sink = await open_queue(engine, paused=True, preview_interval=0.0)
    await queue.submit(fake_request("j1", steps=20))
    queue.resume()
    assert engine.wait_for_batches(1)  # blocks the loop on purpose: every step is reported while it waits
    await sink.done("j1")
    progress = [e for e in sink.of("j1") if isinstance(e, Progressed)]
    assert [(e.step, e.steps) for e in progress] == [(20, 20)]
    assert progress[0].preview is not None and progress[0].preview.startswith(b"\xff\xd8")


async def test_gpu_seconds_split_a_batch_by_work_units_and_skip_queued_time(open_queue: OpenQueue) -> None:
    clock = ManualClock()
    engine = FakeEngine(seconds_per_batch=4.0, sleep=clock.sleep)
    queue, sink = await open_queue(engine, paused=True, clock=clock)
    await queue.submit(fake_request("small", count=1))
    await queue.submit(fake_request("large", user_id=2, count=3))
    clock.sleep(100.0)  # queued time
    queue.resume()
    small, large = await sink.done("small", "large")
    assert isinstance(small, Finished) and isinstance(large, Finished)
    assert (small.result.gpu_seconds, large.result.gpu_seconds) == pytest.approx((1.0, 3.0))
    assert engine.batches == [("small", "large")]
    stats = queue.stats
    assert stats.busy_seconds == pytest.approx(4.0) and stats.uptime_seconds == pytest.approx(104.0)


async def test_close_stops_the_running_batch_without_a_terminal_event(open_queue: OpenQueue) -> None:
    gate = StepGate(2)
    engine = FakeEngine(before_step=gate)
    queue, sink = await open_queue(engine)
    await queue.submit(fake_request("j1", steps=10))
    await gate.wait_reached()
    closing = asyncio.create_task(queue.close())
    await asyncio.sleep(0)  # close() marks the queue stopping before it first waits
    gate.release.set()
    await closing
    assert engine.last_step == 2 and sink.terminal("j1") is None
    with pytest.raises(RuntimeError):
        await queue.submit(fake_request("j2"))


async def test_the_wait_estimate_uses_the_measured_gpu_speed(open_queue: OpenQueue) -> None:
    clock = ManualClock()
    engine = FakeEngine(seconds_per_batch=2.0, sleep=clock.sleep)
    queue, sink = await open_queue(engine, clock=clock, model="named-model")
    await queue.submit(fake_request("first"))
    (first,) = await sink.done("first")
    assert isinstance(first, Finished) and first.result.model == "named-model"
    queue.pause()
    for job_id in ("a", "b", "c"):
        await queue.submit(fake_request(job_id))
    estimates = [await queue.position(j) for j in ("a", "b", "c")]
    assert [(p.position, p.total) for p in estimates if p] == [(1, 3), (2, 3), (3, 3)]
    assert [p.eta_seconds for p in estimates if p] == pytest.approx([0.0, 2.0, 4.0])
    queue.resume()
    await sink.done("a", "b", "c")
