"""Competing calls: bursts of reserves admit exactly what balance and limits allow; a crash loses nothing."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from quota_support import FakeClock, assert_balanced, ticket

import quotas
from quotas import JobStatus, LimitReached, Mode, OutOfFastTime, QuotaSettings, QuotaStore, Reservation

OPERATOR = 99


async def room_for(store: QuotaStore, jobs: int) -> None:
    """Put user 1 on a plan without practical limits, with exactly `jobs` x 5 s of time."""
    await store.update_plan(
        "mega", operator_id=OPERATOR, relax_allowed=False, max_concurrent_fast=1000, max_queued=1000
    )
    await store.set_plan(1, "mega", operator_id=OPERATOR)
    await store.grant(1, -1e9, operator_id=OPERATOR, reason="empty")
    await store.grant(1, jobs * 5.0, operator_id=OPERATOR, reason=f"room for {jobs} jobs")


def outcomes(results: list[object]) -> Counter[type]:
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, quotas.Refused):
            raise result
    return Counter(type(r) for r in results)


async def test_a_hundred_concurrent_reserves_admit_exactly_the_room(store: QuotaStore, db_path: Path) -> None:
    await room_for(store, 7)

    results = await asyncio.gather(*(store.reserve(ticket(f"j{n}")) for n in range(100)), return_exceptions=True)

    assert outcomes(results) == {Reservation: 7, OutOfFastTime: 93}
    assert (await store.account(1)).total_remaining == 0.0
    assert len(await store.open_jobs()) == 7
    assert_balanced(db_path)


async def test_two_connections_racing_admit_exactly_the_room(
    store: QuotaStore, db_path: Path, clock: FakeClock
) -> None:
    await room_for(store, 9)
    other = await QuotaStore.open(db_path, clock=clock)
    try:
        results = await asyncio.gather(
            *((store if n % 2 else other).reserve(ticket(f"j{n}")) for n in range(100)), return_exceptions=True
        )
    finally:
        await other.close()
    assert outcomes(results) == {Reservation: 9, OutOfFastTime: 91}
    assert_balanced(db_path)


async def test_a_burst_of_twenty_admits_the_plans_concurrency(store: QuotaStore) -> None:
    await store.set_plan(1, "basic", operator_id=OPERATOR)

    results = await asyncio.gather(*(store.reserve(ticket(f"j{n}")) for n in range(20)), return_exceptions=True)

    assert outcomes(results) == {Reservation: 3, LimitReached: 17}
    assert {r.kind for r in results if isinstance(r, LimitReached)} == {"concurrent"}


async def test_a_mixed_burst_respects_lanes_and_the_queue(store: QuotaStore) -> None:
    await store.set_plan(1, "standard", operator_id=OPERATOR)
    await store.update_plan("standard", operator_id=OPERATOR, max_queued=5)
    modes = [Mode.FAST, Mode.RELAX, Mode.TURBO, Mode.RELAX] * 5

    results = await asyncio.gather(
        *(store.reserve(ticket(f"j{n}", mode=m)) for n, m in enumerate(modes)), return_exceptions=True
    )

    assert outcomes(results) == {Reservation: 5, LimitReached: 15}
    lanes = Counter(r.mode is Mode.RELAX for r in results if isinstance(r, Reservation))
    assert lanes[True] <= 3 and lanes[False] <= 3
    assert len(await store.open_jobs()) == 5


async def test_concurrent_retries_settle_and_refund_once(store: QuotaStore, db_path: Path) -> None:
    await store.set_plan(1, "pro", operator_id=OPERATOR)
    await store.reserve(ticket("s"))
    await store.reserve(ticket("r"))

    settled = await asyncio.gather(*(store.settle("s", gpu_seconds=2.0, result="{}") for _ in range(10)))
    refunded = await asyncio.gather(*(store.refund("r", reason="failed") for _ in range(10)))

    assert set(settled) == {2.0} and set(refunded) == {5.0}
    assert (await store.account(1)).fast_remaining == 30 * 3600 - 2.0
    assert_balanced(db_path)


CHILD = """
import asyncio, sys
from pathlib import Path
from quotas import JobTicket, QuotaStore

async def main():
    store = await QuotaStore.open(Path(sys.argv[1]))
    await store.reserve(JobTicket(job_id="doomed", user_id=1, kind="imagine", work_units=100, request="{}"))
    print("reserved", flush=True)
    await asyncio.Event().wait()  # hold the connection open until killed

asyncio.run(main())
"""


async def test_a_process_killed_between_reserve_and_settle_is_repaired_by_refund(db_path: Path) -> None:
    root = Path(quotas.__file__).parent.parent
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(db_path), cwd=root, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    try:
        assert await asyncio.wait_for(child.stdout.readline(), timeout=60) == b"reserved\n"
    finally:
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL

    store = await QuotaStore.open(db_path, settings=QuotaSettings())
    try:
        (job,) = await store.open_jobs()
        assert (job.job_id, job.status, job.reserved_seconds) == ("doomed", JobStatus.QUEUED, 5.0)
        assert (await store.account(1)).fast_remaining == 1435.0
        assert await store.refund("doomed", reason="lost in a crash") == 5.0
        assert (await store.account(1)).fast_remaining == 1440.0
        assert await store.open_jobs() == []
    finally:
        await store.close()
    assert_balanced(db_path)


@pytest.mark.parametrize("jobs", [0, 1])
async def test_room_for_zero_or_one(store: QuotaStore, jobs: int) -> None:
    await room_for(store, jobs)
    results = await asyncio.gather(*(store.reserve(ticket(f"j{n}")) for n in range(20)), return_exceptions=True)
    assert outcomes(results)[Reservation] == jobs
