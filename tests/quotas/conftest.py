"""Fixtures of the quota store tests: a store on a real SQLite file under tmp_path, driven by a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quota_support import FakeClock, assert_balanced

from quotas import QuotaSettings, QuotaStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> QuotaSettings:
    return QuotaSettings(
        free_trial_seconds=1440.0,
        free_daily_topup_seconds=0.0,
        free_cooldown_seconds=0.0,
        min_account_age_days=0,
        default_seconds_per_unit=0.05,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "songe.sqlite3"


@pytest.fixture
async def store(db_path: Path, settings: QuotaSettings, clock: FakeClock) -> AsyncIterator[QuotaStore]:
    """An open store; on teardown, every balance must still equal its ledger sums."""
    opened = await QuotaStore.open(db_path, settings=settings, clock=clock)
    yield opened
    await opened.close()
    assert_balanced(db_path)
