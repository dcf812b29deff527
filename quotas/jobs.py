"""The jobs half of `QuotaStore`: reserve, progress, settle or refund, delivery, and the job queries.

The jobs table lives beside the ledger so that a job's limits, reservation and row are written in the
same transaction; nothing accepted is ever lost: `open_jobs` and `untold_jobs` say what a restart
must resubmit, refund, post or tell.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from quotas import charges, plans
from quotas.base import StoreBase
from quotas.errors import UnknownJob
from quotas.ledger import read_seconds_per_unit
from quotas.models import FREE_PLAN, JobRecord, JobStatus, JobTicket, Mode, Reservation
from quotas.units import maybe_dt, to_dt, to_seconds


def record_of(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        user_id=row["user_id"],
        kind=row["kind"],
        status=JobStatus(row["status"]),
        mode=Mode(row["mode"]),
        request=row["request"],
        result=row["result"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        parent_job_id=row["parent_job_id"],
        image_index=row["image_index"],
        reserved_seconds=to_seconds(row["reserved_plan_ms"] + row["reserved_extra_ms"]),
        charged_seconds=to_seconds(row["charged_ms"]),
        refunded_seconds=to_seconds(row["refunded_ms"]),
        created_at=to_dt(row["created_at"]),
        finished_at=maybe_dt(row["finished_at"]),
        delivered=bool(row["delivered"]),
        work_units=row["work_units"],
        images=row["images"],
        fell_back_to_relax=bool(row["fell_back"]),
        relax_delay_seconds=row["relax_delay"],
        gpu_seconds=None if row["gpu_ms"] is None else to_seconds(row["gpu_ms"]),
        unpaid_seconds=to_seconds(row["unpaid_ms"]),
        started_at=maybe_dt(row["started_at"]),
        failure=row["failure"],
    )


class JobsMixin(StoreBase):
    async def reserve(self, ticket: JobTicket, now: datetime | None = None) -> Reservation:
        """Hold the job's estimated cost and record it as queued, or refuse.

        Raises Banned, LaneNotAllowed, AccountTooNew, Cooldown, OutOfFastTime (no relax to fall back on)
        and LimitReached. Reserving a job id again returns the first reservation.
        """
        return await self._books(lambda books: charges.reserve(books, ticket), now)

    async def estimate(self, user_id: int, work_units: float, mode: Mode | None = None) -> float:
        """GPU seconds a job of `work_units` would hold in `mode` (default: the user's mode); 0 for relax."""

        def work(conn: sqlite3.Connection) -> float:
            row = conn.execute("SELECT plan FROM accounts WHERE user_id = ?", (user_id,)).fetchone()
            plan = plans.load(conn, FREE_PLAN if row is None else row[0])
            chosen = mode or charges.default_mode(conn, user_id, plan)
            return to_seconds(charges.estimate_ms(read_seconds_per_unit(conn, self._settings), work_units, chosen))

        return await self._db.read(work)

    async def seconds_per_unit(self) -> float:
        """GPU seconds per work unit: the running average of finished jobs, or the configured default."""
        return await self._db.read(lambda conn: read_seconds_per_unit(conn, self._settings))

    async def mark_running(self, job_id: str) -> None:
        """A queued job started on the GPU (no-op for a job already running or finished)."""
        ts = self._ts(None)
        await self._db.write(
            lambda conn: self._update_job(
                conn, job_id, "status = 'running', started_at = ?", (ts,), where="AND status = 'queued'"
            )
        )

    async def set_message(self, job_id: str, *, channel_id: int, message_id: int) -> None:
        """Where the job's progress and result message lives."""
        await self._db.write(
            lambda conn: self._update_job(conn, job_id, "channel_id = ?, message_id = ?", (channel_id, message_id))
        )

    async def mark_delivered(self, job_id: str, *, message_id: int) -> None:
        """The result was posted in `message_id`."""
        await self._db.write(
            lambda conn: self._update_job(conn, job_id, "delivered = 1, message_id = ?", (message_id,))
        )

    async def mark_told(self, job_id: str) -> None:
        """The author of a failed or cancelled job was told so, and what was refunded."""
        await self._db.write(lambda conn: self._update_job(conn, job_id, "delivered = 1", ()))

    @staticmethod
    def _update_job(
        conn: sqlite3.Connection, job_id: str, sets: str, params: tuple[object, ...], *, where: str = ""
    ) -> None:
        if conn.execute(f"UPDATE jobs SET {sets} WHERE job_id = ? {where}", (*params, job_id)).rowcount:
            return
        if conn.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)).fetchone() is None:
            raise UnknownJob(job_id)

    async def settle(self, job_id: str, *, gpu_seconds: float, result: str) -> float:
        """Charge the measured `gpu_seconds` (x2 turbo, 0 relax); returns the seconds charged. Idempotent."""
        return await self._books(lambda books: charges.settle(books, job_id, gpu_seconds, result))

    async def refund(self, job_id: str, *, reason: str, told: bool = False) -> float:
        """Return the reservation; the job becomes cancelled (reason 'cancelled') or failed. Idempotent.

        `told`: the author already knows (the refusal answered their command); otherwise `mark_told` once they do.
        """
        return await self._books(lambda books: charges.refund(books, job_id, reason, told=told))

    async def job(self, job_id: str) -> JobRecord | None:
        rows = await self._select("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return rows[0] if rows else None

    async def open_jobs(self) -> list[JobRecord]:
        """Queued or running jobs, oldest first: at start-up, resubmit or refund each."""
        return await self._select("SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at")

    async def untold_jobs(self) -> list[JobRecord]:
        """Ended jobs whose author does not have the outcome yet (a result never posted, a refund never told),
        oldest first."""
        return await self._select(
            "SELECT * FROM jobs WHERE delivered = 0 AND status IN ('succeeded', 'failed', 'cancelled') "
            "ORDER BY created_at"
        )

    async def recent_jobs(self, user_id: int, *, limit: int = 25) -> list[JobRecord]:
        """The user's latest jobs, newest first."""
        return await self._select(
            "SELECT * FROM jobs WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?", (user_id, limit)
        )

    async def _select(self, sql: str, params: tuple[object, ...] = ()) -> list[JobRecord]:
        return await self._db.read(lambda conn: [record_of(row) for row in conn.execute(sql, params)])
