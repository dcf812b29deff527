"""NatsQueue beyond the shared contract: server settings, object store, heartbeats, restarts, permissions."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import urllib.request
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.js.errors import NotFoundError

from pipelines.errors import QueueUnavailable
from pipelines.fake import FakeEngine, RecordingSink
from pipelines.nats_queue import NatsQueue
from pipelines.nats_setup import Layout
from pipelines.remote_worker import add_worker_subcommand, run_worker, worker_engine
from pipelines.types import TERMINAL_EVENTS, Cancelled, Finished, JobEvent, Started
from tests.pipelines.test_queue_contract import ended, job, nats_stack, of
from tests.support.nats_server import NatsServer, free_port, require_nats_server

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"


def test_the_documented_server_settings_fsync_every_write(server: NatsServer) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/varz", timeout=5) as response:
        varz = json.load(response)
    assert varz["jetstream"]["config"]["sync_always"] is True
    assert varz["max_payload"] == 1024 * 1024
    documented = DOCS.read_text()
    assert "sync_interval: always" in documented and "max_payload: 1MB" in documented


async def test_large_requests_and_results_travel_through_the_object_store_and_are_deleted(
    server: NatsServer,
) -> None:
    async with nats_stack(server.url, [FakeEngine()], inline_limit=1024) as (queue, events):
        await queue.submit(job("big", size=128, source_image=os.urandom(600_000)))  # over 512 KiB
        end = await ended(events, "big")
        await queue.submit(job("barrier"))  # events are handled in order: the big one is cleaned up by then
        await ended(events, "barrier")
    assert isinstance(end, Finished)
    assert len(end.result.images) == 2 and all(image.startswith(b"\x89PNG") for image in end.result.images)
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        assert (await js.stream_info("OBJ_songe-payloads")).state.last_seq > 0  # it went through the store
        with pytest.raises(NotFoundError):
            await (await js.object_store("songe-payloads")).list(ignore_deletes=True)
    finally:
        await nc.close()


async def test_a_job_longer_than_ack_wait_keeps_its_message_through_heartbeats(server: NatsServer) -> None:
    engines = [FakeEngine(seconds_per_batch=2.5), FakeEngine(seconds_per_batch=2.5)]
    async with nats_stack(server.url, engines, ack_wait=1.0) as (queue, events):
        await queue.submit(job("long"))
        assert isinstance(await ended(events, "long"), Finished)
    assert sum(len(engine.batches) for engine in engines) == 1


async def test_events_wait_in_the_stream_for_a_restarted_bot(server: NatsServer) -> None:
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(server.url, FakeEngine(seconds_per_batch=1.0), idle_poll=0.2, stop=stop))
    try:
        first, before = NatsQueue(server.url), RecordingSink()
        await first.start(before)
        await first.submit(job("survivor"))
        await before.wait_for(lambda: of(before, "survivor", Started) != [])
        await first.close()
        second, after = NatsQueue(server.url), RecordingSink()
        await second.start(after)
        assert isinstance(await ended(after, "survivor"), Finished)
        await second.close()
    finally:
        stop.set()
        await worker
    assert before.terminal("survivor") is None


class RecordingLater(RecordingSink):
    """A sink that records terminal events' outcomes only when the test resolves `pending[job_id]`."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[str, asyncio.Future[None]] = {}

    def __call__(self, event: JobEvent) -> asyncio.Future[None] | None:  # type: ignore[override]
        super().__call__(event)
        if not isinstance(event, TERMINAL_EVENTS):
            return None
        self.pending[event.job_id] = asyncio.get_running_loop().create_future()
        return self.pending[event.job_id]


async def unacked_events(server: NatsServer) -> tuple[int, int]:
    """(events waiting, events delivered to the bot but not acked) on the bot's events consumer."""
    layout = Layout("SONGE")
    connection = await nats.connect(server.url)
    try:
        info = await connection.jetstream().consumer_info(layout.events_stream, layout.events_consumer)
        return info.num_pending or 0, info.num_ack_pending or 0
    finally:
        await connection.close()


async def test_a_terminal_event_is_acked_only_once_the_bot_recorded_its_outcome(server: NatsServer) -> None:
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(server.url, FakeEngine(), idle_poll=0.2, stop=stop))
    try:
        first, before = NatsQueue(server.url, ack_wait=3.0), RecordingLater()
        await first.start(before)
        await first.submit(job("unrecorded"))
        assert isinstance(await ended(before, "unrecorded"), Finished)
        await first.close()  # the bot dies before its database has the outcome

        second, after = NatsQueue(server.url, ack_wait=3.0), RecordingLater()
        await second.start(after)
        assert isinstance(await ended(after, "unrecorded"), Finished)  # so the event comes again
        await asyncio.sleep(2.5)  # longer than ack_wait / 3: the queue tells the server it is in progress
        assert await unacked_events(server) == (0, 1)
        after.pending["unrecorded"].set_result(None)
        async with asyncio.timeout(10):
            while await unacked_events(server) != (0, 0):
                await asyncio.sleep(0.05)
        await second.close()
    finally:
        stop.set()
        await worker
    assert len(of(after, "unrecorded", Finished)) == 1


def documented_authorization() -> str:
    block = DOCS.read_text().split("<!-- authorization -->")[1].split("<!-- /authorization -->")[0]
    return block.strip().strip("`").strip()


async def test_workers_with_the_documented_permissions_serve_jobs_and_nothing_else(tmp_path: Path) -> None:
    require_nats_server()
    secrets = {"SONGE_BOT_PASSWORD": "bot-secret", "SONGE_WORKER_PASSWORD": "worker-secret"}
    with NatsServer(tmp_path / "nats", authorization=documented_authorization(), env=secrets) as server:
        events = RecordingSink()
        queue = NatsQueue(server.url.replace("nats://", "nats://songe-bot:bot-secret@"))  # as in SONGE_NATS_URL
        await queue.start(events)
        stop = asyncio.Event()
        worker = asyncio.create_task(
            run_worker(
                server.url,
                FakeEngine(seconds_per_step=0.05),
                user="songe-worker",
                password="worker-secret",
                inline_limit=1024,
                idle_poll=0.2,
                stop=stop,
            )
        )
        try:
            queue.pause()
            await queue.submit(job("held", source_image=os.urandom(600_000)))
            queue.resume()
            assert isinstance(await ended(events, "held"), Finished)  # pull, ack, both ways through the object store
            await queue.submit(job("stopped", steps=400))
            await events.wait_for(lambda: of(events, "stopped", Started) != [])
            assert await queue.cancel("stopped")
            assert isinstance(await ended(events, "stopped"), Cancelled)  # cancel watch
            assert "Violation" not in server.log_path.read_text()  # "Publish Violation", "Subscription Violation"

            intruder = await nats.connect(server.url, user="songe-worker", password="worker-secret")
            try:
                js = intruder.jetstream(timeout=0.5)
                with pytest.raises(nats.errors.Error):
                    await js.publish("songe.jobs.fast.forged", b"{}")
                with pytest.raises(nats.errors.Error):
                    await js.delete_stream("SONGE")
                with pytest.raises(nats.errors.Error):
                    await (await js.key_value("songe-control")).put("paused", b"1")
            finally:
                await intruder.close()
            assert await queue.depth() == 0
        finally:
            stop.set()
            await worker
            await queue.close()


def test_the_worker_subcommand_parses_into_a_runnable_command() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipelines")
    add_worker_subcommand(
        parser.add_subparsers(dest="command"), engine_factory=lambda args: FakeEngine(model=args.model)
    )
    args = parser.parse_args(["worker", "--nats", "nats://hub:4222", "--model", "sdxl", "--max-batch", "2"])
    assert (args.nats, args.max_batch, args.fake) == ("nats://hub:4222", 2, False)
    assert callable(args.func)
    engine = worker_engine(args, lambda parsed: FakeEngine(model=parsed.model))
    assert engine.model == "sdxl"
    with pytest.raises(SystemExit):
        worker_engine(args)  # no factory, no --fake: nothing to run


async def test_start_without_a_server_raises_queue_unavailable() -> None:
    queue = NatsQueue(f"nats://127.0.0.1:{free_port()}", reconnect_wait=0.05)
    with pytest.raises(QueueUnavailable, match="cannot reach"):
        await queue.start(RecordingSink())
