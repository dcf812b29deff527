"""NatsQueue under faults, with a real nats-server: a worker killed mid-job, a poison job, a broker outage.

Workers here are separate processes (`python -m pipelines.remote_worker --fake`) where the fault
is a process dying; the outage test keeps its worker in-process. ack_wait is 2 s so that lost
deliveries come back quickly.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.errors import QueueUnavailable
from pipelines.fake import FakeEngine, RecordingSink
from pipelines.nats_queue import NatsQueue
from pipelines.types import Failed, FailureKind, Finished, Started
from tests.pipelines.test_queue_contract import ended, job, nats_stack, of
from tests.support.nats_server import NatsServer

REPO = Path(__file__).resolve().parents[2]
OUTAGE_SECONDS = 10.0  # how long the broker stays down in the outage test
ACK_WAIT = 2.0


@pytest.fixture
def spawn_worker(server: NatsServer, tmp_path: Path) -> Iterator[callable]:
    """Start `python -m pipelines.remote_worker --fake` processes; all are killed at the end."""
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(*options: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker{len(processes)}.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "pipelines.remote_worker",
            "--nats",
            server.url,
            "--fake",
            "--idle-poll",
            "0.2",
        ]
        process = subprocess.Popen([*command, *options], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture
async def queue(server: NatsServer) -> tuple[NatsQueue, RecordingSink]:
    events = RecordingSink()
    running = NatsQueue(server.url, ack_wait=ACK_WAIT, max_deliver=3)
    await running.start(events)
    yield running, events
    await running.close()


async def test_a_job_whose_worker_is_killed_is_finished_by_another_once(
    queue: tuple[NatsQueue, RecordingSink], spawn_worker: callable
) -> None:
    nats_queue, events = queue
    doomed = spawn_worker("--fake-seconds-per-batch", "1.5")
    await nats_queue.submit(job("orphan"))
    await events.wait_for(lambda: of(events, "orphan", Started) != [], timeout=20)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    spawn_worker("--fake-seconds-per-batch", "1.5")  # gets the job once ack_wait has passed
    assert isinstance(await ended(events, "orphan", timeout=30), Finished)
    await nats_queue.submit(job("barrier"))  # same single worker: its events come after the orphan's
    await ended(events, "barrier", timeout=20)
    assert len(of(events, "orphan", Finished)) == 1
    assert len(of(events, "orphan", Started)) == 1  # the server keeps one Started per job


async def test_a_job_that_crashes_every_worker_fails_as_poison_after_max_deliver(
    queue: tuple[NatsQueue, RecordingSink], spawn_worker: callable
) -> None:
    nats_queue, events = queue
    workers = [spawn_worker("--crash-on-prompt", "poison") for _ in range(4)]
    await nats_queue.submit(job("bad", prompt="poison"))
    failure = await ended(events, "bad", timeout=40)
    assert isinstance(failure, Failed) and failure.kind is FailureKind.POISON
    assert sum(worker.poll() is not None for worker in workers) == 3  # one crash per delivery
    await nats_queue.submit(job("good"))
    assert isinstance(await ended(events, "good", timeout=20), Finished)
    assert await nats_queue.depth() <= 1  # the poison message is gone (the good one may await its ack)


async def test_a_broker_outage_refuses_new_jobs_and_loses_none(server: NatsServer) -> None:
    engine = FakeEngine(seconds_per_step=0.2)
    async with nats_stack(server.url, [engine], ack_wait=ACK_WAIT) as (nats_queue, events):
        await nats_queue.submit(job("through", steps=10))  # 2 s of work, across the outage
        await events.wait_for(lambda: of(events, "through", Started) != [])
        server.stop()
        with pytest.raises(QueueUnavailable):
            await nats_queue.submit(job("refused"))
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
        server.start()
        assert isinstance(await ended(events, "through", timeout=30), Finished)
        await nats_queue.submit(job("after"))
        assert isinstance(await ended(events, "after", timeout=30), Finished)
    assert len(of(events, "through", Finished)) == 1
    assert events.of("refused") == []
    assert all("refused" not in batch for batch in engine.batches)
