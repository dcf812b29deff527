"""Scale-out over NATS JetStream: throughput with 1, 2 and 4 worker processes, and the latency NATS adds.

A real nats-server (file store, fsync on every write) on this machine; workers are separate
processes (`python -m pipelines.remote_worker --fake`) whose `FakeEngine` costs a fixed time per
batch. Throughput: jobs from 50 users, all compatible, queued while the workers are paused, then
drained; the figure is each run's jobs per second as a ratio to one worker's, measured in the same
run (goal: at least 0.9 x N), median of three runs.
Latency: one job at a time, submit to `Finished`, through NATS and one worker, against `LocalQueue`
on the same fake engine in this process; the difference is what the broker round trips cost.

    python -m bench.bench_nats
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from pipelines.fake import FakeEngine, fake_request
from pipelines.nats_queue import NatsQueue
from pipelines.queue import GenerationQueue
from pipelines.types import TERMINAL_EVENTS, JobEvent
from pipelines.worker import LocalQueue
from tests.support.nats_server import NatsServer

SECONDS_PER_BATCH = 0.050
MAX_BATCH = 4
BATCHES_PER_WORKER = 40
USERS = 50
WORKERS = (1, 2, 4)
LATENCY_JOBS = 30
GOAL = 0.9
REPEATS = 3
REPO = Path(__file__).resolve().parents[1]
RUNS = itertools.count()


@contextlib.contextmanager
def workers(url: str, count: int, stream: str) -> Iterator[None]:
    command = [
        sys.executable,
        "-m",
        "pipelines.remote_worker",
        "--nats",
        url,
        "--stream",
        stream,
        "--fake",
        "--fake-seconds-per-batch",
        str(SECONDS_PER_BATCH),
        "--max-batch",
        str(MAX_BATCH),
        "--idle-poll",
        "0.2",
    ]
    processes = [subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


class CountingSink:
    """Counts terminal events; `wait(n)` returns once `n` jobs ended (cheap at any count)."""

    def __init__(self) -> None:
        self.ended = 0
        self._changed = asyncio.Event()

    def __call__(self, event: JobEvent) -> None:
        if isinstance(event, TERMINAL_EVENTS):
            self.ended += 1
            self._changed.set()

    async def wait(self, count: int, timeout: float = 300.0) -> None:
        async with asyncio.timeout(timeout):
            while self.ended < count:
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def nats_queue(url: str, stream: str) -> AsyncIterator[tuple[NatsQueue, CountingSink]]:
    sink = CountingSink()
    queue = NatsQueue(url, stream=stream, max_queued_per_user=1000)
    await queue.start(sink)
    try:
        yield queue, sink
    finally:
        await queue.close()


async def warm_up(queue: GenerationQueue, sink: CountingSink, count: int, tag: str) -> None:
    """A few jobs per worker, so that every worker is connected before the clock starts."""
    for i in range(count * MAX_BATCH):
        await queue.submit(fake_request(f"{tag}-warm{i}", steps=1))
    await sink.wait(sink.ended + count * MAX_BATCH, timeout=60)


async def throughput(url: str, count: int) -> float:
    """Jobs per second through `count` worker processes."""
    stream = f"BENCH{count}{next(RUNS)}"
    jobs = [
        fake_request(f"w{count}-{i}", user_id=i % USERS, steps=1, seed=i)
        for i in range(BATCHES_PER_WORKER * MAX_BATCH * count)
    ]
    with workers(url, count, stream):
        async with nats_queue(url, stream) as (queue, sink):
            await warm_up(queue, sink, count, stream)
            target = sink.ended + len(jobs)
            queue.pause()
            for request in jobs:
                await queue.submit(request)
            started = time.perf_counter()
            queue.resume()
            await sink.wait(target)
            return len(jobs) / (time.perf_counter() - started)


async def latencies(queue: GenerationQueue, sink: CountingSink, tag: str) -> list[float]:
    """Seconds from submit to the terminal event, one job at a time."""
    seconds = []
    for i in range(LATENCY_JOBS):
        started = time.perf_counter()
        await queue.submit(fake_request(f"{tag}-lat{i}", steps=1))
        await sink.wait(sink.ended + 1, timeout=60)
        seconds.append(time.perf_counter() - started)
    return seconds


async def latency_local() -> list[float]:
    sink = CountingSink()
    queue = LocalQueue(FakeEngine(seconds_per_batch=SECONDS_PER_BATCH), max_batch=MAX_BATCH)
    await queue.start(sink)
    try:
        return await latencies(queue, sink, "local")
    finally:
        await queue.close()


async def latency_nats(url: str) -> list[float]:
    with workers(url, 1, "LATENCY"):
        async with nats_queue(url, "LATENCY") as (queue, sink):
            await warm_up(queue, sink, 1, "latency")
            return await latencies(queue, sink, "nats")


async def run(url: str) -> None:
    print(
        f"FakeEngine {SECONDS_PER_BATCH * 1000:.0f} ms per batch of up to {MAX_BATCH}; "
        f"{BATCHES_PER_WORKER} batches per worker; median of {REPEATS} runs; nats-server with sync_interval: always"
    )
    rates = {count: statistics.median([await throughput(url, count) for _ in range(REPEATS)]) for count in WORKERS}
    ideal = MAX_BATCH / SECONDS_PER_BATCH
    for count, rate in rates.items():
        ratio = rate / rates[1]
        verdict = "ok" if ratio >= GOAL * count else f"BELOW GOAL {GOAL * count:.1f}"
        print(
            f"{count} worker(s): {rate:7.1f} jobs/s  x{ratio:.2f} of one worker  "
            f"({rate / (ideal * count):.0%} of the engine's {ideal * count:.0f} jobs/s)  {verdict}"
        )
    local = statistics.median(await latency_local())
    remote = statistics.median(await latency_nats(url))
    print(
        f"latency per job (median of {LATENCY_JOBS}): LocalQueue {local * 1000:.1f} ms, "
        f"NATS {remote * 1000:.1f} ms, added by NATS {(remote - local) * 1000:.1f} ms"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as store, NatsServer(Path(store)) as server:
        asyncio.run(run(server.url))


if __name__ == "__main__":
    main()
