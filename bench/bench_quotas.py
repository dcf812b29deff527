"""Quota store throughput: reserve + settle through `QuotaStore` (aiosqlite) against plain sqlite3.

The baselines run the store's own transaction code (`quotas.charges` inside `db.commit_group`) on a plain
`sqlite3` connection, so both sides execute the same statements on the same kind of file (WAL,
synchronous=FULL, same folder): one job at a time (a commit per operation), and in groups of 16 (what the
store's group commit does with 16 callers in flight). Disk sync latency on shared machines drifts by 3-5x
within seconds, so the variants run interleaved in rounds and each figure is the median over the rounds.
Goal: at least 1,000 jobs accounted per second through the store.

    python -m bench.bench_quotas [--jobs 2000] [--rounds 5] [--dir /folder/on/the/disk/to/measure]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from quotas import JobTicket, QuotaSettings, QuotaStore, charges, db
from quotas.ledger import Books

USERS = 20
IN_FLIGHT = 16
GOAL = 1000.0
SETTINGS = QuotaSettings()


def _ticket(n: int) -> JobTicket:
    return JobTicket(job_id=f"job-{n}", user_id=n % USERS, kind="imagine", work_units=100.0, request="{}", images=4)


def _reserve(conn: sqlite3.Connection, ticket: JobTicket) -> object:
    return charges.reserve(Books(conn, SETTINGS, time.time()), ticket)


def _settle(conn: sqlite3.Connection, job_id: str) -> object:
    return charges.settle(Books(conn, SETTINGS, time.time()), job_id, 2.0, "{}")


async def _prepare(path: Path) -> None:
    """Users on a plan with room for every job, so that the timed part only reserves and settles."""
    store = await QuotaStore.open(path, settings=SETTINGS)
    try:
        await store.update_plan("mega", operator_id=0, max_concurrent_fast=10_000, max_queued=10_000)
        for user in range(USERS):
            await store.set_plan(user, "mega", operator_id=0)
    finally:
        await store.close()


def _plain(path: Path, jobs: range, group: int) -> float:
    """Seconds to reserve then settle `jobs` on plain sqlite3, `group` operations per commit."""
    conn = db.connect(path, SETTINGS)
    try:
        start = time.perf_counter()
        for first in range(0, len(jobs), group):
            tickets = [_ticket(n) for n in jobs[first : first + group]]
            db.commit_group(conn, [functools.partial(_reserve, ticket=t) for t in tickets])
            db.commit_group(conn, [functools.partial(_settle, job_id=t.job_id) for t in tickets])
        return time.perf_counter() - start
    finally:
        conn.close()


async def _through_store(path: Path, jobs: range, in_flight: int) -> float:
    """Seconds for `in_flight` concurrent callers to reserve then settle `jobs` through the store."""
    store = await QuotaStore.open(path, settings=SETTINGS)

    async def caller(first: int) -> None:
        for n in jobs[first::in_flight]:
            await store.reserve(_ticket(n))
            await store.settle(f"job-{n}", gpu_seconds=2.0, result="{}")

    try:
        start = time.perf_counter()
        await asyncio.gather(*(caller(first) for first in range(in_flight)))
        return time.perf_counter() - start
    finally:
        await store.close()


VARIANTS: dict[str, Callable[[Path, range], float]] = {
    "plain sqlite3, 1 job per commit": lambda path, jobs: _plain(path, jobs, 1),
    "QuotaStore, 1 caller": lambda path, jobs: asyncio.run(_through_store(path, jobs, 1)),
    f"plain sqlite3, {IN_FLIGHT} jobs per commit": lambda path, jobs: _plain(path, jobs, IN_FLIGHT),
    f"QuotaStore, {IN_FLIGHT} callers": lambda path, jobs: asyncio.run(_through_store(path, jobs, IN_FLIGHT)),
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_quotas", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs reserved and settled per variant")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the jobs are split into")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files (default: a temp dir)")
    args = parser.parse_args(argv)
    per_round = args.jobs // args.rounds
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="songe-bench-") as folder:
        paths = {name: Path(folder) / f"variant-{i}.sqlite3" for i, name in enumerate(VARIANTS)}
        for path in paths.values():
            asyncio.run(_prepare(path))
        for round_ in range(args.rounds):
            jobs = range(round_ * per_round, (round_ + 1) * per_round)
            for name, run in VARIANTS.items():
                rates[name].append(len(jobs) / run(paths[name], jobs))
        print(
            f"quotas: reserve + settle, {args.rounds} x {per_round} jobs per variant, WAL + synchronous=FULL,"
            f" files in {folder}"
        )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    names = list(VARIANTS)
    baselines = {names[1]: names[0], names[3]: names[2]}
    for name, median in medians.items():
        spread = f"({min(rates[name]):.0f}-{max(rates[name]):.0f})"
        ratio = f"{median / medians[baselines[name]]:5.2f} x {baselines[name]}" if name in baselines else ""
        print(f"  {name:34} {median:7.0f} jobs/s {spread:>12}  {ratio}")
    best = max(medians[names[1]], medians[names[3]])
    print(f"  goal >= {GOAL:.0f} jobs/s through the store: {'met' if best >= GOAL else 'NOT met'} ({best:.0f})")


if __name__ == "__main__":
    main()
