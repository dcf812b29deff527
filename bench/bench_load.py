"""Load: a hundred users each send ten /imagine at once to the bot process, on a fast fake engine.

    python -m bench.bench_load [--users 100] [--per-user 10]

The bot is `python -m bot` with a fake engine (`tests/e2e/fake_engine_bot.py`) in its own process, against
the fake Discord in this one. Figures:

- deferral latency: from the moment the fake's gateway sent INTERACTION_CREATE to the bot's deferral, as the
  fake measured it (Discord fails an interaction not answered within 3 s); p50, p99 and worst;
- event-loop lag inside the bot: a task in the bot's loop sleeps 10 ms over and over and records how late
  it wakes; the worst lag while the storm lasts (Songe's aim: under 100 ms).

Baselines measured in the same run: the deferral of single /imagine commands sent one at a time to the idle
bot, and the heartbeat's worst lag while the bot idles. The queue is paused (`/admin pause`) during the storm
so that each free user gets exactly their plan's concurrent jobs; then it resumes and every job is delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.e2e.audit import audit, settled
from tests.e2e.conftest import OWNER_ID, World
from tests.e2e.load import add_users, admin, answered, report, storm
from tests.e2e.processes import BotLauncher
from tests.support.fake_discord import ADMINISTRATOR, FakeDiscord

IDLE_SECONDS = 2.0
SINGLES = 10
LAG_AIM = 0.100
DEADLINE = 3.0


async def world_of(server: FakeDiscord) -> World:
    guild = server.add_guild("Songe load")
    channel = server.add_channel(guild, "art")
    users = [server.add_user(name) for name in ("alice", "bob")]
    admin = server.add_user("admin", permissions=ADMINISTRATOR)
    operator = server.add_user("operator")
    frenchie = server.add_user("amelie", locale="fr")
    await server.start()
    return World(server, guild, channel, *users, admin, operator, frenchie)


async def measure(users: int, per_user: int, folder: Path) -> None:
    server = FakeDiscord(owner_id=OWNER_ID)
    world = await world_of(server)
    crowd = add_users(server, users)
    launcher = BotLauncher(world, folder)
    lag_file = folder / "lag.json"
    try:
        run = await launcher.start(folder / "data", SONGE_TEST_LAG_FILE=str(lag_file))
        singles = []
        for n in range(SINGLES):
            itx = await server.slash(
                world.alice if n % 2 else world.bob, world.channel, "imagine", prompt=f"single {n}"
            )
            await answered(server, [itx])
            singles.append(itx)
        idle_from = time.time()
        await asyncio.sleep(IDLE_SECONDS)
        idle_until = time.time()

        await admin(server, world.operator, world.channel, "pause")
        storm_from = time.time()
        interactions = await storm(server, world.channel, crowd, per_user)
        await answered(server, interactions, timeout=300)
        answered_at = time.time()
        await admin(server, world.operator, world.channel, "resume")
        await settled(folder / "data" / "songe.sqlite3", timeout=300)
        storm_until = time.time()
        await run.terminate()
        found = await audit(server, folder / "data" / "songe.sqlite3")
    finally:
        launcher.close()
        await server.stop()

    samples = json.loads(lag_file.read_text())
    idle_lag = max((lag for at, lag in samples if idle_from <= at <= idle_until), default=0.0)
    storm_lag = max((lag for at, lag in samples if storm_from <= at <= storm_until), default=0.0)
    single = statistics.median(report(server, singles).latencies)
    load = report(server, interactions)
    admitted, refused = sum(load.admitted.values()), sum(load.refused.values())
    print(f"{users} users x {per_user} /imagine at once ({len(interactions)}), bot process on a fake engine")
    print(f"baseline, one /imagine on the idle bot: deferral median {single * 1000:7.1f} ms (of {SINGLES})")
    print(
        f"storm deferral:  p50 {load.p50 * 1000:7.1f} ms  p99 {load.p99 * 1000:7.1f} ms  worst "
        f"{load.worst * 1000:7.1f} ms  (p50 x{load.p50 / single:.0f} baseline; Discord's limit {DEADLINE:.0f} s: "
        f"{'ok' if load.worst < DEADLINE else 'MISSED'})"
    )
    print(
        f"event-loop lag:  idle worst {idle_lag * 1000:6.1f} ms  storm worst {storm_lag * 1000:6.1f} ms  "
        f"(aim {LAG_AIM * 1000:.0f} ms: {'ok' if storm_lag < LAG_AIM else 'ABOVE AIM'})"
    )
    print(
        f"answered in {answered_at - storm_from:.1f} s, all delivered in {storm_until - storm_from:.1f} s; "
        f"admitted {admitted}, refused at the plan's limit {refused}, other answers {len(load.other)}"
    )
    print(f"audit: {found.summary()}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="songe-bench-load-") as folder:
        asyncio.run(measure(args.users, args.per_user, Path(folder)))


if __name__ == "__main__":
    main()
