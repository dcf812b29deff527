"""The run order of queued jobs: lanes, round-robin between users, soft `not_before`, batches."""

from __future__ import annotations

import random

import pytest

from pipelines.fake import fake_request
from pipelines.scheduler import Scheduler
from pipelines.types import GenerationRequest, Lane

NOW = 1_000_000.0


def scheduler_of(*requests: GenerationRequest) -> Scheduler:
    scheduler = Scheduler()
    for request in requests:
        scheduler.add(request)
    return scheduler


def drain(scheduler: Scheduler, *, max_batch: int, now: float = NOW) -> list[list[str]]:
    batches = []
    while batch := scheduler.take(max_batch=max_batch, now=now):
        batches.append([r.job_id for r in batch])
    return batches


def test_lanes_run_turbo_then_fast_then_relax() -> None:
    scheduler = scheduler_of(
        fake_request("relax", lane=Lane.RELAX),
        fake_request("fast", lane=Lane.FAST),
        fake_request("turbo", lane=Lane.TURBO),
    )
    assert drain(scheduler, max_batch=4) == [["turbo"], ["fast"], ["relax"]]


def test_users_take_turns_inside_a_lane() -> None:
    scheduler = scheduler_of(
        *(fake_request(f"a{i}", user_id=1) for i in range(3)),
        fake_request("b0", user_id=2),
        fake_request("c0", user_id=3),
    )
    assert [r.job_id for r in scheduler.order(now=NOW)] == ["a0", "b0", "c0", "a1", "a2"]
    assert drain(scheduler, max_batch=1) == [["a0"], ["b0"], ["c0"], ["a1"], ["a2"]]


def test_a_served_user_goes_behind_the_users_still_waiting() -> None:
    scheduler = scheduler_of(*(fake_request(f"a{i}", user_id=1) for i in range(4)))
    assert scheduler.take(max_batch=1, now=NOW)[0].job_id == "a0"
    scheduler.add(fake_request("b0", user_id=2))
    assert drain(scheduler, max_batch=1) == [["b0"], ["a1"], ["a2"], ["a3"]]


def test_a_user_coming_back_neither_jumps_the_queue_nor_banks_turns() -> None:
    scheduler = scheduler_of(*(fake_request(f"a{i}", user_id=1) for i in range(5)), fake_request("b0", user_id=2))
    assert drain_some(scheduler, 3) == ["a0", "b0", "a1"]
    scheduler.add(fake_request("b1", user_id=2))  # b had one turn to a's two: b goes first
    for i in range(3):
        scheduler.add(fake_request(f"c{i}", user_id=3))  # c was away: it starts at the current turn, no credit
    assert drain(scheduler, max_batch=1) == [["b1"], ["c0"], ["a2"], ["c1"], ["a3"], ["c2"], ["a4"]]


def drain_some(scheduler: Scheduler, count: int) -> list[str]:
    return [scheduler.take(max_batch=1, now=NOW)[0].job_id for _ in range(count)]


def test_a_batch_fills_with_compatible_jobs_in_fairness_order() -> None:
    scheduler = scheduler_of(
        *(fake_request(f"a{i}", user_id=1) for i in range(10)),
        fake_request("wide", user_id=3, width=128),
        fake_request("b0", user_id=2),
    )
    batches = drain(scheduler, max_batch=4)
    assert batches[0] == ["a0", "b0", "a1", "a2"]
    assert ["wide"] in batches
    assert sorted(j for batch in batches for j in batch) == sorted([f"a{i}" for i in range(10)] + ["wide", "b0"])


def test_lower_lanes_never_ride_in_a_higher_lanes_batch() -> None:
    scheduler = scheduler_of(fake_request("fast"), fake_request("relax", user_id=2, lane=Lane.RELAX))
    assert drain(scheduler, max_batch=4) == [["fast"], ["relax"]]


def test_a_job_not_yet_due_waits_only_while_due_work_waits() -> None:
    later = fake_request("later", lane=Lane.RELAX, not_before=NOW + 60)
    due_relax = fake_request("due", user_id=2, lane=Lane.RELAX, not_before=NOW - 1)
    scheduler = scheduler_of(later, due_relax)
    assert drain(scheduler, max_batch=4) == [["due"], ["later"]]
    scheduler.add(later)
    assert drain(scheduler, max_batch=4, now=NOW + 61) == [["later"]]


def test_remove_takes_a_job_out_of_the_order() -> None:
    scheduler = scheduler_of(fake_request("a0"), fake_request("a1"), fake_request("b0", user_id=2))
    assert scheduler.remove("a0") is not None
    assert scheduler.remove("a0") is None
    assert "a0" not in scheduler and len(scheduler) == 2
    assert drain(scheduler, max_batch=1) == [["a1"], ["b0"]]


@pytest.mark.parametrize("seed", range(5))
def test_take_follows_the_predicted_order_and_respects_batch_rules(seed: int) -> None:
    rng = random.Random(seed)
    requests = [
        fake_request(
            f"j{i}",
            user_id=rng.randrange(4),
            lane=rng.choice(list(Lane)),
            width=rng.choice([64, 128]),
            not_before=rng.choice([0.0, NOW + 10]),
        )
        for i in range(40)
    ]
    scheduler = scheduler_of(*requests)
    by_id = {r.job_id: r for r in requests}
    taken: list[str] = []
    while len(scheduler):
        predicted_head = scheduler.order(now=NOW)[0]
        batch = scheduler.take(max_batch=3, now=NOW)
        assert batch[0] is predicted_head
        assert 1 <= len(batch) <= 3
        assert len({(r.batch_key, r.lane, r.not_before <= NOW) for r in batch}) == 1
        taken += [r.job_id for r in batch]
    assert sorted(taken) == sorted(by_id)
    due_flags = [by_id[j].not_before <= NOW for j in taken]
    assert due_flags == sorted(due_flags, reverse=True)
