"""The job service with a real store on SQLite, the real worker on a fake engine, and a recording presenter."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.files import ImageFiles
from bot.job_types import DeliveryError, Job, JobSpec, ProgressState, Running, StoredResult, new_job_id
from bot.jobs import JobService
from pipelines.fake import FakeEngine, fake_request
from pipelines.types import Cancelled, FailureKind, GenerationRequest, Started
from pipelines.worker import LocalQueue
from quotas import JobStatus, QuotaSettings, QuotaStore

USER = 1001
CHANNEL = 555


@dataclass
class RecordingPresenter:
    """Implements the Presenter protocol by recording what it was asked to show."""

    posted: list[str] = field(default_factory=list)
    edits: dict[str, list[ProgressState]] = field(default_factory=dict)
    delivered: dict[str, tuple[StoredResult, list[bytes]]] = field(default_factory=dict)
    ended: dict[str, tuple[float, FailureKind | None]] = field(default_factory=dict)
    notices: list[tuple[str, str]] = field(default_factory=list)  # (job, detail) of each notice, in order
    already_posted: dict[str, int] = field(default_factory=dict)  # results a run before the restart posted
    unreachable: bool = False  # notices fail as if the channel and the author's DMs were closed
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    next_id: int = 9000

    async def post_progress(self, job: Job, state: ProgressState) -> int | None:
        self.posted.append(job.job_id)
        self.next_id += 1
        return self.next_id

    async def edit_progress(self, job: Job, state: ProgressState) -> None:
        self.edits.setdefault(job.job_id, []).append(state)

    async def deliver(self, job: Job, result: StoredResult, images: list[bytes]) -> int:
        self.delivered[job.job_id] = (result, images)
        self.changed.set()
        self.next_id += 1
        return self.next_id

    async def posted_result(self, job: Job) -> int | None:
        return self.already_posted.get(job.job_id)

    async def notify_ended(self, job: Job, *, refunded: float, kind: FailureKind | None, message: str) -> None:
        if self.unreachable:
            raise DeliveryError("closed")
        self.ended[job.job_id] = (refunded, kind)
        self.notices.append((job.job_id, message))
        self.changed.set()

    async def wait(self, job_id: str, timeout: float = 10.0) -> None:
        async def until() -> None:
            while job_id not in self.delivered and job_id not in self.ended:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), timeout)


@dataclass
class Harness:
    service: JobService
    store: QuotaStore
    engine: FakeEngine
    queue: LocalQueue
    presenter: RecordingPresenter
    files: ImageFiles


async def _harness(tmp_path: Path, engine: FakeEngine) -> Harness:
    store = await QuotaStore.open(tmp_path / "songe.sqlite3", settings=QuotaSettings(free_trial_seconds=100.0))
    queue = LocalQueue(engine, max_batch=4, preview_interval=0.0)
    presenter = RecordingPresenter()
    files = ImageFiles(tmp_path / "images")
    service = JobService(store=store, queue=queue, files=files, presenter=presenter, edit_interval=0.0)
    await queue.start(service.on_event)
    return Harness(service, store, engine, queue, presenter, files)


async def _close(h: Harness) -> None:
    await h.queue.close()
    await h.service.close()
    await h.store.close()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await _harness(tmp_path, FakeEngine(seconds_per_step=0.002))
    yield h
    await _close(h)


def spec(request: GenerationRequest) -> JobSpec:
    return JobSpec(kind="imagine", request=request, channel_id=CHANNEL, guild_id=1, locale="en-US")


def request(**fields: object) -> GenerationRequest:
    values: dict[str, object] = {"user_id": USER, "width": 64, "height": 48, "steps": 4, "count": 4}
    values.update(fields)
    return fake_request(new_job_id(), **values)


async def test_a_finished_job_is_saved_settled_and_delivered(harness: Harness) -> None:
    job = request(prompt="a red fox")
    accepted = await harness.service.submit(spec(job))
    assert accepted.message_id is not None
    await harness.presenter.wait(job.job_id)
    result, images = harness.presenter.delivered[job.job_id]
    assert len(images) == 4 and result.files == ("0.png", "1.png", "2.png", "3.png")
    assert Image.open(io.BytesIO(images[0])).size == (64, 48)
    assert harness.files.exists(job.job_id, 3)
    record = await harness.store.job(job.job_id)
    assert record is not None and record.status is JobStatus.SUCCEEDED and record.delivered
    assert record.charged_seconds == pytest.approx(result.gpu_seconds, abs=0.01)
    account = await harness.store.account(USER)
    assert account.total_remaining == pytest.approx(100.0 - record.charged_seconds, abs=0.01)
    assert any(isinstance(state, Running) for state in harness.presenter.edits.get(job.job_id, []))


async def test_a_failed_job_is_refunded_in_full(tmp_path: Path) -> None:
    h = await _harness(tmp_path, FakeEngine(fail_prompts=("explode",)))
    try:
        job = request(prompt="explode")
        await h.service.submit(spec(job))
        await h.presenter.wait(job.job_id)
        refunded, kind = h.presenter.ended[job.job_id]
        assert kind is not None and refunded > 0
        assert (await h.store.account(USER)).total_remaining == pytest.approx(100.0)
        assert (await h.store.job(job.job_id)).status is JobStatus.FAILED  # type: ignore[union-attr]
    finally:
        await _close(h)


async def test_a_cancelled_queued_job_is_refunded(harness: Harness) -> None:
    harness.queue.pause()
    job = request()
    await harness.service.submit(spec(job))
    assert await harness.service.cancel(job.job_id)
    await harness.presenter.wait(job.job_id)
    refunded, kind = harness.presenter.ended[job.job_id]
    assert kind is None and refunded > 0
    assert (await harness.store.account(USER)).total_remaining == pytest.approx(100.0)
    assert harness.engine.batches == []


async def test_recover_resubmits_open_jobs_and_delivers_settled_ones(tmp_path: Path) -> None:
    first = await _harness(tmp_path, FakeEngine())
    first.queue.pause()
    waiting = request(prompt="left in the queue")
    await first.service.submit(spec(waiting))
    await _close(first)  # a stop with a job still queued: it stays QUEUED in the database

    second = await _harness(tmp_path, FakeEngine())
    try:
        resubmitted, refunded, delivered = await second.service.recover()
        assert (resubmitted, refunded, delivered) == (1, 0, 0)
        await second.presenter.wait(waiting.job_id)
        assert waiting.job_id in second.presenter.delivered
        # Delivered jobs are not delivered again by a later recovery.
        assert await second.service.recover() == (0, 0, 0)
    finally:
        await _close(second)
    assert len(second.presenter.delivered) == 1


async def test_a_refund_whose_notice_was_not_sent_is_told_at_the_next_start(tmp_path: Path) -> None:
    async def status(store: QuotaStore, job_id: str) -> tuple[JobStatus, bool] | None:
        record = await store.job(job_id)
        return None if record is None else (record.status, record.delivered)

    async def until(store: QuotaStore, job_id: str, wanted: tuple[JobStatus, bool]) -> None:
        async def poll() -> None:
            while await status(store, job_id) != wanted:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), 10)

    first = await _harness(tmp_path, FakeEngine(fail_prompts=("explode",)))
    first.presenter.unreachable = True  # the notice is lost, as when the bot dies between the refund and it
    job = request(prompt="explode")
    await first.service.submit(spec(job))
    await until(first.store, job.job_id, (JobStatus.FAILED, False))
    await _close(first)

    second = await _harness(tmp_path, FakeEngine())
    try:
        assert await second.service.recover() == (0, 0, 1)
        await until(second.store, job.job_id, (JobStatus.FAILED, True))
        record = await second.store.job(job.job_id)
        assert record is not None and record.refunded_seconds > 0
        assert second.presenter.ended[job.job_id] == (record.refunded_seconds, FailureKind.BAD_INPUT)
        assert second.presenter.notices == [(job.job_id, "fake engine refuses 'explode'")]
        assert await second.service.recover() == (0, 0, 0)  # told once
        assert (await second.store.account(USER)).total_remaining == pytest.approx(100.0)
    finally:
        await _close(second)


async def test_a_terminal_event_reports_when_its_outcome_is_in_the_database(harness: Harness) -> None:
    harness.queue.pause()
    job = request()
    await harness.service.submit(spec(job))
    recorded = harness.service.on_event(Cancelled(job.job_id))  # as a remote queue hands it over
    assert recorded is not None
    await asyncio.wait_for(recorded, 10)
    record = await harness.store.job(job.job_id)
    assert record is not None and record.status is JobStatus.CANCELLED
    unknown = harness.service.on_event(Cancelled(new_job_id()))  # nothing to record: done at once
    assert unknown is not None
    await asyncio.wait_for(unknown, 10)
    assert harness.service.on_event(Started(job.job_id)) is None


async def test_reconcile_resends_an_open_job_nobody_watches(harness: Harness) -> None:
    from bot.job_types import Envelope
    from quotas import JobTicket

    job = request(prompt="an event lost in a crash")
    envelope = Envelope(request=job, locale="en-US", display_prompt=job.prompt, parameters="")
    await harness.store.reserve(
        JobTicket(
            job_id=job.job_id,
            user_id=USER,
            kind="imagine",
            work_units=job.work_units,
            request=envelope.dumps(),
            channel_id=CHANNEL,
            images=4,
        )
    )
    assert await harness.service.reconcile(deadline=timedelta(hours=1)) == (1, 0)
    await harness.presenter.wait(job.job_id)
    assert job.job_id in harness.presenter.delivered
    assert await harness.service.reconcile(deadline=timedelta(hours=1)) == (0, 0)


async def test_reconcile_refunds_a_job_stuck_past_its_deadline(tmp_path: Path) -> None:
    release = threading.Event()
    h = await _harness(tmp_path, FakeEngine(before_step=lambda *_: release.wait(10)))
    try:
        job = request(prompt="stuck on a dead worker")
        await h.service.submit(spec(job))
        while (await h.queue.position(job.job_id)) is not None:  # wait until it runs
            await asyncio.sleep(0.01)
        assert await h.service.reconcile(deadline=timedelta(0)) == (0, 1)
        refunded, _ = h.presenter.ended[job.job_id]
        assert refunded > 0
        release.set()
        record = await h.store.job(job.job_id)
        assert record is not None and record.status in (JobStatus.FAILED, JobStatus.CANCELLED)
        assert (await h.store.account(USER)).total_remaining == pytest.approx(100.0)
    finally:
        release.set()
        await _close(h)
    assert job.job_id not in h.presenter.delivered
