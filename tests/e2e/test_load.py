"""Issue 6, load: a hundred users each send ten /imagine at once to the bot on a fast fake engine.

Every interaction is deferred within Discord's 3 s, each free user gets exactly their plan's concurrent jobs
and a clear refusal for the rest, and every admitted job is delivered once. The bot runs in its own process
(see `tests/e2e/load.py`); the event loop's lag under this load is measured by `bench/bench_load.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quotas import QuotaSettings
from quotas.plans import default_plans
from tests.e2e.audit import audit, settled
from tests.e2e.conftest import World
from tests.e2e.load import add_users, admin, answered, report, storm
from tests.e2e.processes import BotLauncher

pytestmark = pytest.mark.e2e

USERS = 100
PER_USER = 10
DEADLINE = 3.0  # Discord's: an interaction not answered by then fails for the user


async def test_a_hundred_users_sending_ten_imagines_each_are_all_answered_in_time(
    world: World, launcher: BotLauncher, tmp_path: Path
) -> None:
    server, channel, operator = world.server, world.channel, world.operator
    database = tmp_path / "data" / "songe.sqlite3"
    users = add_users(server, USERS)
    free = next(plan for plan in default_plans(QuotaSettings()) if plan.name == "free")
    run = await launcher.start(tmp_path / "data")
    await admin(server, operator, channel, "pause")  # no job ends and frees a slot: the limits are exact
    interactions = await storm(server, channel, users, PER_USER)
    await answered(server, interactions)
    await admin(server, operator, channel, "resume")
    await settled(database, timeout=120)
    assert await run.terminate() == 0
    found = await audit(server, database)

    storm_report = report(server, interactions)
    print(
        f"\nload: {len(interactions)} /imagine, deferral p50 {storm_report.p50 * 1000:.0f} ms, "
        f"p99 {storm_report.p99 * 1000:.0f} ms, worst {storm_report.worst * 1000:.0f} ms; {found.summary()}"
    )
    assert storm_report.worst < DEADLINE
    assert not storm_report.other, storm_report.other[:5]
    assert all(storm_report.admitted[u.id] == free.max_concurrent_fast for u in users)
    assert all(storm_report.refused[u.id] == PER_USER - free.max_concurrent_fast for u in users)
    assert not found.failures, "\n".join(found.failures[:10])
    assert found.jobs == found.delivered == USERS * free.max_concurrent_fast
