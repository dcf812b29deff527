"""Reserve, settle and refund: the three ledger moves of a job, each run inside one write transaction.

A job holds its estimate from reserve to settle: plan time first, then extra time. Settle charges the
measured GPU seconds (x2 turbo, 0 relax) and returns the rest of the reservation; a job that ran over
its reservation is charged the difference from the balance, clamped at zero (the uncovered part is
recorded as `unpaid_ms`). Refund returns the reservation in full. Both are idempotent on the job id:
the job's status moves out of queued/running with a guarded UPDATE, and only the call that moved it
writes to the ledger. Plan time reserved in an earlier period (a renewal or a change of plan came in
between) is returned and expired at once, since unspent plan time never rolls over.
"""

from __future__ import annotations

import logging
import math
import sqlite3

from quotas import plans
from quotas.errors import AccountTooNew, Banned, Cooldown, LaneNotAllowed, LimitReached, OutOfFastTime, UnknownJob
from quotas.ledger import Account, Books
from quotas.models import FREE_PLAN, JobStatus, JobTicket, LedgerKind, Mode, Plan, Reservation
from quotas.units import maybe_dt, to_dt, to_ms, to_seconds, to_ts

log = logging.getLogger(__name__)

_OPEN = "status IN ('queued', 'running')"


def estimate_ms(seconds_per_unit: float, work_units: float, mode: Mode) -> int:
    """What a job of `work_units` is expected to cost in `mode`, in milliseconds."""
    return to_ms(work_units * seconds_per_unit * mode.cost_factor)


def default_mode(conn: sqlite3.Connection, user_id: int, plan: Plan) -> Mode:
    """The user's preferred mode, or fast where the plan lacks it (a preference left from a bigger plan)."""
    row = conn.execute("SELECT mode FROM preferences WHERE user_id = ?", (user_id,)).fetchone()
    mode = Mode.FAST if row is None else Mode(row[0])
    return mode if plan.allows(mode) else Mode.FAST


def reservation_of(row: sqlite3.Row) -> Reservation:
    return Reservation(
        row["job_id"],
        row["user_id"],
        Mode(row["mode"]),
        to_seconds(row["reserved_plan_ms"] + row["reserved_extra_ms"]),
        bool(row["fell_back"]),
        row["relax_delay"],
    )


def reserve(books: Books, ticket: JobTicket) -> Reservation:
    """Accept `ticket` or raise a `Refused`; a job id already reserved returns its reservation again."""
    conn = books.conn
    existing = conn.execute("SELECT * FROM jobs WHERE job_id = ?", (ticket.job_id,)).fetchone()
    if existing is not None:
        if existing["user_id"] != ticket.user_id:
            raise ValueError(f"job id {ticket.job_id} already belongs to user {existing['user_id']}")
        return reservation_of(existing)
    account = books.account(ticket.user_id)
    plan = account.plan
    if account.banned:
        raise Banned(account.user_id, account.ban_reason)
    mode = ticket.mode or default_mode(conn, ticket.user_id, plan)
    if not plan.allows(mode):
        raise LaneNotAllowed(
            mode=mode,
            plan=plan.name,
            upgrades=plans.upgrades(conn, plan, relax=mode is Mode.RELAX, turbo=mode is Mode.TURBO),
        )
    if plan.name == FREE_PLAN:
        _check_free_use(books, account, ticket)
    cost = estimate_ms(books.seconds_per_unit(), ticket.work_units, mode)
    fell_back = False
    if cost > account.balance_ms:
        if not plan.relax_allowed:
            raise OutOfFastTime(
                remaining_seconds=to_seconds(account.balance_ms),
                needed_seconds=to_seconds(cost),
                plan=plan.name,
                renews_at=maybe_dt(account.renews_at),
                fast_would_fit=mode is Mode.TURBO and cost // 2 <= account.balance_ms,
                upgrades=plans.upgrades(conn, plan, relax=True),
            )
        mode, cost, fell_back = Mode.RELAX, 0, True
    _check_limits(conn, account, mode)
    from_plan = min(account.plan_ms, cost)
    delay = books.settings.relax_delay(to_seconds(account.relax_ms)) if mode is Mode.RELAX else 0.0
    conn.execute(
        "INSERT INTO jobs (job_id, user_id, kind, status, mode, fell_back, relax_delay, request, guild_id, channel_id,"
        " parent_job_id, image_index, work_units, images, period_start, reserved_plan_ms, reserved_extra_ms,"
        " created_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ticket.job_id,
            ticket.user_id,
            ticket.kind,
            mode.value,
            int(fell_back),
            delay,
            ticket.request,
            ticket.guild_id,
            ticket.channel_id,
            ticket.parent_job_id,
            ticket.image_index,
            ticket.work_units,
            ticket.images,
            account.period_start,
            from_plan,
            cost - from_plan,
            books.now,
        ),
    )
    if cost:
        books.post(
            account,
            LedgerKind.RESERVE,
            plan_ms=-from_plan,
            extra_ms=-(cost - from_plan),
            key=f"reserve:{ticket.job_id}",
            job_id=ticket.job_id,
            reason=f"{mode.value} {ticket.kind}",
        )
    account.last_job_at = books.now
    books.save(account)
    return Reservation(ticket.job_id, ticket.user_id, mode, to_seconds(cost), fell_back, delay)


def _check_free_use(books: Books, account: Account, ticket: JobTicket) -> None:
    """The free plan's abuse guards: a minimum Discord account age and a cooldown between jobs."""
    days = books.settings.min_account_age_days
    if days and ticket.account_created_at is not None:
        eligible = to_ts(ticket.account_created_at) + days * 86400
        if books.now < eligible:
            raise AccountTooNew(min_days=days, eligible_at=to_dt(eligible))
    cooldown = books.settings.free_cooldown_seconds
    if cooldown and account.last_job_at is not None:
        wait = account.last_job_at + cooldown - books.now
        if wait > 0:
            raise Cooldown(wait)


def _check_limits(conn: sqlite3.Connection, account: Account, mode: Mode) -> None:
    """Open (queued or running) jobs: per lane group (fast+turbo, relax) and in all."""
    counts = {
        Mode(m): n
        for m, n in conn.execute(
            f"SELECT mode, count(*) FROM jobs WHERE user_id = ? AND {_OPEN} GROUP BY mode", (account.user_id,)
        )
    }
    lane = counts.get(Mode.RELAX, 0) if mode is Mode.RELAX else counts.get(Mode.FAST, 0) + counts.get(Mode.TURBO, 0)
    plan = account.plan
    if lane >= plan.concurrency_limit(mode):
        raise LimitReached(kind="concurrent", limit=plan.concurrency_limit(mode), mode=mode, plan=plan.name)
    if sum(counts.values()) >= plan.max_queued:
        raise LimitReached(kind="queued", limit=plan.max_queued, mode=mode, plan=plan.name)


def _close(books: Books, job_id: str, status: JobStatus, sets: str, params: tuple[object, ...]) -> sqlite3.Row | None:
    """Move an open job to `status` (guarded: only from queued/running); None if it was not open."""
    rows = books.conn.execute(
        f"UPDATE jobs SET status = ?, finished_at = ?, {sets} WHERE job_id = ? AND {_OPEN} RETURNING *",
        (status.value, books.now, *params, job_id),
    ).fetchall()
    return rows[0] if rows else None


def _closed_before(books: Books, job_id: str, action: str, expected: tuple[JobStatus, ...]) -> sqlite3.Row:
    """The job a settle or refund found already closed: a retry (no-op) or a conflict (logged, no-op)."""
    row: sqlite3.Row | None = books.conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        raise UnknownJob(job_id)
    if row["status"] in expected:
        log.debug("job=%s %s again: no-op", job_id, action)
    else:
        log.warning("job=%s user=%s %s ignored: the job is already %s", job_id, row["user_id"], action, row["status"])
    return row


def _expire_stale(books: Books, account: Account, job: sqlite3.Row, plan_ms: int) -> int:
    """Expire `plan_ms` just returned to the plan bucket if the job was reserved in an earlier period."""
    if plan_ms <= 0 or job["period_start"] >= account.period_start:
        return 0
    books.post(
        account,
        LedgerKind.EXPIRE,
        plan_ms=-plan_ms,
        key=f"expire:{job['job_id']}",
        job_id=job["job_id"],
        reason="plan time reserved in an earlier period",
    )
    return plan_ms


def settle(books: Books, job_id: str, gpu_seconds: float, result: str) -> float:
    """Charge a finished job its measured cost; returns the seconds charged (the same again on a retry)."""
    if not math.isfinite(gpu_seconds) or gpu_seconds < 0:
        raise ValueError(f"job {job_id}: gpu_seconds must be a finite number >= 0, got {gpu_seconds!r}")
    gpu_ms = to_ms(gpu_seconds)
    job = _close(books, job_id, JobStatus.SUCCEEDED, "result = ?, gpu_ms = ?", (result, gpu_ms))
    if job is None:
        row = _closed_before(books, job_id, "settle", (JobStatus.SUCCEEDED,))
        return to_seconds(row["charged_ms"])
    account = books.account(job["user_id"])
    mode = Mode(job["mode"])
    cost = gpu_ms * mode.cost_factor
    plan_held, extra_held = job["reserved_plan_ms"], job["reserved_extra_ms"]
    if cost <= plan_held + extra_held:
        from_plan = min(cost, plan_held)
        back_plan, back_extra, unpaid = plan_held - from_plan, extra_held - (cost - from_plan), 0
    else:
        over = cost - plan_held - extra_held
        more_plan = min(account.plan_ms, over)
        more_extra = min(account.extra_ms, over - more_plan)
        back_plan, back_extra, unpaid = -more_plan, -more_extra, over - more_plan - more_extra
    charged = cost - unpaid
    if back_plan or back_extra:
        reason = f"{to_seconds(charged):.3f} s for {gpu_seconds:.3f} GPU s ({mode.value})"
        if unpaid:
            reason += f"; {to_seconds(unpaid):.3f} s over the reservation left unpaid (balance empty)"
            log.warning(
                "job=%s user=%s ran %.3f s over its reservation with an empty balance",
                job_id,
                job["user_id"],
                to_seconds(unpaid),
            )
        books.post(
            account,
            LedgerKind.SETTLE,
            plan_ms=back_plan,
            extra_ms=back_extra,
            key=f"settle:{job_id}",
            job_id=job_id,
            reason=reason,
        )
    _expire_stale(books, account, job, back_plan)
    relax_ms = gpu_ms if mode is Mode.RELAX else 0
    account.relax_ms += relax_ms
    books.conn.execute("UPDATE jobs SET charged_ms = ?, unpaid_ms = ? WHERE job_id = ?", (charged, unpaid, job_id))
    books.conn.execute(
        "UPDATE accounts SET lifetime_images = lifetime_images + ?, relax_ms = relax_ms + ?,"
        " lifetime_gpu_ms = lifetime_gpu_ms + ? WHERE user_id = ?",
        (job["images"], relax_ms, gpu_ms, job["user_id"]),
    )
    books.learn_seconds_per_unit(gpu_seconds, job["work_units"])
    return to_seconds(charged)


def refund(books: Books, job_id: str, reason: str, *, told: bool = False) -> float:
    """Return an open job's reservation; status becomes cancelled (reason 'cancelled') or failed."""
    status = JobStatus.CANCELLED if reason == "cancelled" else JobStatus.FAILED
    job = _close(books, job_id, status, "failure = ?, delivered = ?", (reason, int(told)))
    if job is None:
        row = _closed_before(books, job_id, "refund", (JobStatus.FAILED, JobStatus.CANCELLED))
        return to_seconds(row["refunded_ms"])
    account = books.account(job["user_id"])
    plan_held, extra_held = job["reserved_plan_ms"], job["reserved_extra_ms"]
    if plan_held or extra_held:
        books.post(
            account,
            LedgerKind.REFUND,
            plan_ms=plan_held,
            extra_ms=extra_held,
            key=f"refund:{job_id}",
            job_id=job_id,
            reason=reason,
        )
    refunded = plan_held + extra_held - _expire_stale(books, account, job, plan_held)
    books.conn.execute("UPDATE jobs SET refunded_ms = ? WHERE job_id = ?", (refunded, job_id))
    return to_seconds(refunded)
