"""Random sequences of grants, reserves, settles, refunds (and their retries), months passing, plan and
mode changes: balances stay non-negative and equal to the ledger, and no job is charged or refunded twice."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from quota_support import FakeClock, assert_balanced, ticket

from quotas import Mode, QuotaSettings, QuotaStore, Refused
from quotas.units import to_ms

T = TypeVar("T")
OPERATOR = 99
USERS = st.sampled_from([1, 2])
SECONDS = st.floats(min_value=0, max_value=600, allow_nan=False)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()  # one event loop per example
        self.folder = Path(tempfile.mkdtemp(prefix="songe-ledger-"))
        self.path = self.folder / "ledger.sqlite3"
        self.clock = FakeClock()
        self.store = self.run(
            QuotaStore.open(self.path, settings=QuotaSettings(free_trial_seconds=300.0), clock=self.clock)
        )
        self.open: dict[str, int] = {}  # job -> user
        self.closed: dict[str, tuple[str, float]] = {}  # job -> (settle | refund, what the first call returned)
        self.jobs = 0

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder)

    def balance(self, user: int) -> int:
        """The user's balance in ms, after bringing the account up to date (so the next call renews nothing)."""
        return to_ms(self.run(self.store.account(user)).total_remaining)

    def ledger_size(self, user: int) -> int:
        return len(self.run(self.store.ledger(user, limit=10_000)))

    @rule(user=USERS, seconds=st.floats(min_value=-2000, max_value=2000, allow_nan=False))
    def grant(self, user: int, seconds: float) -> None:
        self.run(self.store.grant(user, seconds, operator_id=OPERATOR, reason="machine"))

    @rule(
        user=USERS, units=st.floats(min_value=0, max_value=8000, allow_nan=False), mode=st.sampled_from([None, *Mode])
    )
    def reserve(self, user: int, units: float, mode: Mode | None) -> None:
        self.jobs += 1
        job = f"j{self.jobs}"
        before = self.balance(user)
        try:
            reservation = self.run(self.store.reserve(ticket(job, user, units=units, mode=mode)))
        except Refused:
            assert self.balance(user) == before
            return
        self.open[job] = user
        assert reservation.reserved_seconds >= 0
        assert self.balance(user) == before - to_ms(reservation.reserved_seconds)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), gpu_seconds=SECONDS)
    def settle(self, data: st.DataObject, gpu_seconds: float) -> None:
        job = data.draw(st.sampled_from(sorted(self.open)))
        charged = self.run(self.store.settle(job, gpu_seconds=gpu_seconds, result="{}"))
        assert charged >= 0
        self.closed[job] = ("settle", charged)
        self.retry(job)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), cancelled=st.booleans())
    def refund(self, data: st.DataObject, cancelled: bool) -> None:
        job = data.draw(st.sampled_from(sorted(self.open)))
        user = self.open[job]
        before = self.balance(user)
        refunded = self.run(self.store.refund(job, reason="cancelled" if cancelled else "failed"))
        assert self.balance(user) == before + to_ms(refunded)
        self.closed[job] = ("refund", refunded)
        self.retry(job)

    def retry(self, job: str) -> None:
        """Settle or refund the closed `job` again, either way: nothing moves and the first answer stands."""
        user = self.open.pop(job, None) or self.run(self.store.job(job)).user_id  # type: ignore[union-attr]
        before, rows = self.balance(user), self.ledger_size(user)
        action, first = self.closed[job]
        again = self.run(
            self.store.settle(job, gpu_seconds=1.0, result="{}")
            if action == "settle"
            else self.store.refund(job, reason="failed")
        )
        assert again == first
        other = self.run(
            self.store.refund(job, reason="failed")
            if action == "settle"
            else self.store.settle(job, gpu_seconds=1.0, result="{}")
        )
        assert other == 0.0
        assert (self.balance(user), self.ledger_size(user)) == (before, rows)

    @precondition(lambda self: self.closed)
    @rule(data=st.data())
    def retry_later(self, data: st.DataObject) -> None:
        self.retry(data.draw(st.sampled_from(sorted(self.closed))))

    @rule(days=st.integers(min_value=1, max_value=40))
    def time_passes(self, days: int) -> None:
        self.clock.advance(days=days)

    @rule(user=USERS, plan=st.sampled_from(["free", "basic", "standard", "pro"]))
    def change_plan(self, user: int, plan: str) -> None:
        self.run(self.store.set_plan(user, plan, operator_id=OPERATOR))

    @rule(user=USERS, mode=st.sampled_from(Mode))
    def change_mode(self, user: int, mode: Mode) -> None:
        self.run(self.store.set_mode(user, mode))

    @invariant()
    def balances_equal_the_ledger(self) -> None:
        assert_balanced(self.path)

    @invariant()
    def each_job_moved_its_reservation_exactly_once(self) -> None:
        """Its non-expiry ledger rows sum to minus the reservation while open, minus the charge once settled,
        zero once refunded; at most one of them settles or refunds."""
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute(
                "SELECT j.job_id, j.status, j.reserved_plan_ms + j.reserved_extra_ms, j.charged_ms,"
                " coalesce(sum(l.plan_ms + l.extra_ms) FILTER (WHERE l.kind != 'expire'), 0),"
                " count(l.id) FILTER (WHERE l.kind IN ('settle', 'refund'))"
                " FROM jobs AS j LEFT JOIN ledger AS l USING (job_id) GROUP BY j.job_id"
            ).fetchall()
        for job, status, reserved, charged, moved, closings in rows:
            expected = {"queued": -reserved, "running": -reserved, "succeeded": -charged}.get(status, 0)
            assert moved == expected, f"job {job} ({status}) moved {moved} ms, expected {expected}"
            assert closings <= 1


LedgerMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_ledger_state_machine = LedgerMachine.TestCase
