"""`LocalQueue` when batches fail: out of memory, refused requests, crashes, and mixed storms of them."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

import pytest
import torch

from pipelines.engine import EngineOutput, StepCallback
from pipelines.fake import FakeEngine, RecordingSink, fake_request
from pipelines.types import TERMINAL_EVENTS, Cancelled, Failed, FailureKind, Finished, GenerationRequest, Started
from pipelines.worker import LocalQueue


class CrashingEngine(FakeEngine):
    """A `FakeEngine` whose batches holding the prompt "crash" raise a plain bug."""

    def run(self, batch: Sequence[GenerationRequest], on_step: StepCallback) -> list[EngineOutput]:
        if any(r.prompt == "crash" for r in batch):
            self.attempts.append(tuple(r.job_id for r in batch))
            raise KeyError("boom")
        return super().run(batch, on_step)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


async def run_all(
    engine: FakeEngine, sink: RecordingSink, requests: list[GenerationRequest], **options: object
) -> None:
    """Queue every request while paused, then serve until each has its terminal event."""
    queue = LocalQueue(engine, **options)  # type: ignore[arg-type]
    queue.pause()
    await queue.start(sink)
    try:
        for request in requests:
            await queue.submit(request)
        queue.resume()
        await sink.done(*(r.job_id for r in requests))
    finally:
        await queue.close()


async def test_a_batch_out_of_memory_is_retried_in_halves(sink: RecordingSink) -> None:
    engine = FakeEngine(oom_above=2)
    await run_all(engine, sink, [fake_request(f"j{i}", user_id=i) for i in range(4)])
    assert engine.attempts == [("j0", "j1", "j2", "j3"), ("j0", "j1"), ("j2", "j3")]
    assert engine.batches == [("j0", "j1"), ("j2", "j3")]
    assert all(isinstance(sink.terminal(f"j{i}"), Finished) for i in range(4))


async def test_a_job_too_big_even_alone_fails_out_of_memory_and_the_others_are_served(sink: RecordingSink) -> None:
    engine = FakeEngine(oom_above=2)
    requests = [fake_request("big", count=4), *(fake_request(f"s{i}", user_id=i + 2) for i in range(3))]
    await run_all(engine, sink, requests)
    big = sink.terminal("big")
    assert isinstance(big, Failed) and big.kind is FailureKind.OUT_OF_MEMORY
    assert all(isinstance(sink.terminal(f"s{i}"), Finished) for i in range(3))
    assert ("big",) in engine.attempts and all("big" not in batch for batch in engine.batches)


async def test_out_of_memory_empties_the_cuda_cache(sink: RecordingSink, monkeypatch: pytest.MonkeyPatch) -> None:
    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    await run_all(FakeEngine(oom_above=1), sink, [fake_request("a"), fake_request("b", user_id=2)])
    assert emptied == [True]


async def test_a_refused_request_fails_alone_with_its_kind(sink: RecordingSink) -> None:
    engine = FakeEngine(fail_prompts={"bad prompt"})
    requests = [
        fake_request("ok1"),
        fake_request("bad", user_id=2, prompt="bad prompt"),
        fake_request("ok2", user_id=3),
    ]
    await run_all(engine, sink, requests)
    bad = sink.terminal("bad")
    assert isinstance(bad, Failed) and bad.kind is FailureKind.BAD_INPUT and "bad prompt" in bad.message
    assert isinstance(sink.terminal("ok1"), Finished) and isinstance(sink.terminal("ok2"), Finished)


async def test_an_unexpected_error_is_logged_and_fails_internal_and_the_worker_goes_on(
    sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    engine = CrashingEngine()
    requests = [fake_request("crashes", prompt="crash"), fake_request("after", width=128)]
    with caplog.at_level(logging.ERROR, logger="pipelines.worker"):
        await run_all(engine, sink, requests)
    crashed = sink.terminal("crashes")
    assert isinstance(crashed, Failed) and crashed.kind is FailureKind.INTERNAL and "KeyError" in crashed.message
    assert "boom" not in crashed.message
    assert any("job=crashes" in r.getMessage() for r in caplog.records)
    assert isinstance(sink.terminal("after"), Finished)


@pytest.mark.parametrize("seed", range(3))
async def test_every_job_gets_exactly_one_terminal_event_and_nothing_after_it(seed: int) -> None:
    rng = random.Random(seed)
    engine = CrashingEngine(oom_above=5, fail_prompts={"bad"})
    requests = [
        fake_request(
            f"j{i}",
            user_id=rng.randrange(5),
            count=rng.choice([1, 2, 6]),
            steps=rng.choice([2, 3]),
            prompt=rng.choice(["fine", "fine", "fine", "bad", "crash"]),
        )
        for i in range(40)
    ]
    queue = LocalQueue(engine, max_batch=4, preview_interval=0.0, position_interval=0.0)
    doomed = {r.job_id for r in requests if rng.random() < 0.3}
    cancels: list[asyncio.Task[bool]] = []

    def sink(event: object) -> None:
        recorder(event)  # type: ignore[arg-type]
        if isinstance(event, Started) and event.job_id in doomed:
            cancels.append(asyncio.create_task(queue.cancel(event.job_id)))

    recorder = RecordingSink()
    await queue.start(sink)
    try:
        for request in requests:
            await queue.submit(request)
            if request.job_id in doomed and rng.random() < 0.5:
                await queue.cancel(request.job_id)
        await recorder.done(*(r.job_id for r in requests))
        await asyncio.gather(*cancels)
        assert await queue.depth() == 0
    finally:
        await queue.close()
    for request in requests:
        events = recorder.of(request.job_id)
        assert sum(isinstance(e, TERMINAL_EVENTS) for e in events) == 1, events
        assert isinstance(events[-1], TERMINAL_EVENTS), events
        if request.job_id not in doomed and request.prompt == "fine" and request.count < 6:
            assert isinstance(events[-1], Finished), events
        if isinstance(events[-1], Cancelled):
            assert request.job_id in doomed
