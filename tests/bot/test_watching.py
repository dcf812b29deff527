"""A watch coalesces a job's queue events: the latest progress wins, the first terminal event ends it."""

from __future__ import annotations

from typing import cast

from bot.job_types import Job, Running, Waiting
from bot.watching import Watch, waiting
from pipelines.types import Cancelled, Failed, FailureKind, Progressed, Queued, QueuePosition, Started


async def test_progress_keeps_the_last_preview_and_only_the_first_end_counts() -> None:
    watch = Watch(job=cast(Job, object()))  # the job itself is only carried along
    assert watch.take(Queued("j", 3, 5)) is None and watch.latest == Waiting(3, 5, 0.0)
    assert watch.take(Started("j")) is None and watch.latest == Running(0)
    watch.take(Progressed("j", 1, 4, preview=b"jpeg"))
    watch.take(Progressed("j", 2, 4))
    assert watch.latest == Running(50, b"jpeg")
    recorded = watch.take(Cancelled("j"))
    assert recorded is not None and not recorded.done() and watch.ended.is_set()
    assert watch.take(Failed("j", FailureKind.INTERNAL, "late")) is None  # a second end changes nothing
    assert watch.terminal == Cancelled("j") and watch.recorded is recorded


def test_a_queue_position_becomes_a_waiting_state() -> None:
    assert waiting(QueuePosition(2, 7, 30.0)) == Waiting(2, 7, 30.0)
    assert waiting(None) == Waiting(0, 0, 0.0)
