"""How busy `LocalQueue` keeps the GPU under saturation.

A `FakeEngine` costs a fixed time per batch; 500 jobs from 50 users go through the queue
with the production defaults. The figure is engine time over wall time, next to a baseline
measured in the same run: the same batches called back to back on one thread, no queue.
Each queue figure is the median of three runs.

    python -m bench.bench_worker
"""

from __future__ import annotations

import asyncio
import time

from pipelines.fake import FakeEngine, fake_request
from pipelines.types import TERMINAL_EVENTS, GenerationRequest, JobEvent
from pipelines.worker import LocalQueue

SECONDS_PER_BATCH = 0.020
USERS = 50
JOBS_PER_USER = 10
MAX_BATCH = 4
GOAL = 0.98
REPEATS = 3


def workload() -> list[GenerationRequest]:
    """Jobs interleaved as users would send them: one from each user, ten times over."""
    return [
        fake_request(f"u{user}-{n}", user_id=user, count=4, seed=user * 100 + n)
        for n in range(JOBS_PER_USER)
        for user in range(USERS)
    ]


def baseline(requests: list[GenerationRequest]) -> tuple[float, float]:
    """(engine seconds, wall seconds) of the same batches run directly, back to back."""
    engine = FakeEngine(seconds_per_batch=SECONDS_PER_BATCH)
    busy = 0.0
    started = time.perf_counter()
    for i in range(0, len(requests), MAX_BATCH):
        before = time.perf_counter()
        engine.run(requests[i : i + MAX_BATCH], lambda step, steps, previews: None)
        busy += time.perf_counter() - before
    return busy, time.perf_counter() - started


async def through_queue(requests: list[GenerationRequest], *, queued_up_front: bool) -> tuple[float, float, int]:
    """(engine seconds, wall seconds, batches) to serve `requests` through a `LocalQueue`.

    Up front: every job waits before the queue resumes. Otherwise jobs keep arriving from
    the event loop while the worker runs (after a head start of one batch per user).
    """
    queue = LocalQueue(FakeEngine(seconds_per_batch=SECONDS_PER_BATCH), max_batch=MAX_BATCH)
    remaining = len(requests)
    all_done = asyncio.Event()

    def sink(event: JobEvent) -> None:
        nonlocal remaining
        if isinstance(event, TERMINAL_EVENTS):
            remaining -= 1
            if remaining == 0:
                all_done.set()

    head = len(requests) if queued_up_front else USERS
    queue.pause()
    await queue.start(sink)
    for request in requests[:head]:
        await queue.submit(request)
    before = queue.stats
    started = time.perf_counter()
    queue.resume()
    for request in requests[head:]:
        await queue.submit(request)
        await asyncio.sleep(0)
    await all_done.wait()
    wall = time.perf_counter() - started
    after = queue.stats
    await queue.close()
    return after.busy_seconds - before.busy_seconds, wall, after.batches - before.batches


def main() -> None:
    requests = workload()
    busy, wall = baseline(requests)
    print(f"{len(requests)} jobs from {USERS} users, {SECONDS_PER_BATCH * 1000:.0f} ms per batch of up to {MAX_BATCH}")
    print(f"baseline (engine alone):    utilisation {busy / wall:7.2%}  wall {wall:.3f} s")
    for up_front in (True, False):
        runs = sorted(
            (asyncio.run(through_queue(requests, queued_up_front=up_front)) for _ in range(REPEATS)),
            key=lambda run: run[0] / run[1],
        )
        q_busy, q_wall, batches = runs[len(runs) // 2]
        label = "queued up front" if up_front else "arriving during run"
        verdict = "ok" if q_busy / q_wall >= GOAL else f"BELOW GOAL {GOAL:.0%}"
        print(
            f"LocalQueue ({label}): utilisation {q_busy / q_wall:7.2%} (median of {REPEATS}, lowest "
            f"{runs[0][0] / runs[0][1]:.2%})  wall {q_wall:.3f} s  batches {batches}  "
            f"wall vs baseline x{q_wall / wall:.3f}  {verdict}"
        )


if __name__ == "__main__":
    main()
