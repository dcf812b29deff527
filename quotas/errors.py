"""Exceptions of the `quotas` package.

QuotaError
 ├── Refused              a reserve the user must hear about; each carries the figures for the message
 │    ├── Banned           .reason
 │    ├── OutOfFastTime    .remaining_seconds, .needed_seconds, .plan, .renews_at, .fast_would_fit, .upgrades
 │    ├── LimitReached     .kind ('concurrent' | 'queued'), .limit, .mode
 │    ├── Cooldown         .retry_after_seconds
 │    ├── AccountTooNew    .min_days, .eligible_at
 │    └── LaneNotAllowed   .mode, .plan, .upgrades
 ├── UnknownJob           .job_id (a bug or a stale button: the job is not in the store)
 ├── UnknownPlan          .name, .known
 └── StoreError           the database itself (operator-facing)
      ├── StoreCorrupted   the file is not a database or fails `PRAGMA integrity_check`
      └── SchemaTooNew     the file was migrated by a newer Songe
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from quotas.models import Mode


class QuotaError(Exception):
    """Base class of the package's errors."""


class Refused(QuotaError):
    """A job was not accepted; the subclass says why."""


class Banned(Refused):
    def __init__(self, user_id: int, reason: str | None) -> None:
        super().__init__(f"user {user_id} is banned: {reason or 'no reason given'}")
        self.user_id = user_id
        self.reason = reason


class OutOfFastTime(Refused):
    """Not enough fast time for the job and the plan has no relax mode to fall back on.

    `fast_would_fit` is True for a turbo job that would fit in fast mode; `upgrades` names the plans
    that include relax mode (the way out besides waiting for `renews_at`).
    """

    def __init__(
        self,
        *,
        remaining_seconds: float,
        needed_seconds: float,
        plan: str,
        renews_at: datetime | None,
        fast_would_fit: bool,
        upgrades: tuple[str, ...],
    ) -> None:
        super().__init__(
            f"{remaining_seconds:.1f} s of fast time left, the job needs {needed_seconds:.1f} s (plan {plan})"
        )
        self.remaining_seconds = remaining_seconds
        self.needed_seconds = needed_seconds
        self.plan = plan
        self.renews_at = renews_at
        self.fast_would_fit = fast_would_fit
        self.upgrades = upgrades


class LimitReached(Refused):
    """`kind` 'concurrent': open jobs of the lane (fast+turbo, or relax); 'queued': open jobs of all lanes."""

    def __init__(self, *, kind: Literal["concurrent", "queued"], limit: int, mode: Mode, plan: str) -> None:
        super().__init__(f"{kind} job limit of plan {plan} reached ({limit})")
        self.kind = kind
        self.limit = limit
        self.mode = mode
        self.plan = plan


class Cooldown(Refused):
    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"free-plan cooldown: retry in {retry_after_seconds:.1f} s")
        self.retry_after_seconds = retry_after_seconds


class AccountTooNew(Refused):
    def __init__(self, *, min_days: int, eligible_at: datetime) -> None:
        super().__init__(
            f"the free allowance needs a Discord account older than {min_days} days "
            f"(eligible at {eligible_at.isoformat()})"
        )
        self.min_days = min_days
        self.eligible_at = eligible_at


class LaneNotAllowed(Refused):
    """The plan does not include the mode; `upgrades` names the plans that do."""

    def __init__(self, *, mode: Mode, plan: str, upgrades: tuple[str, ...]) -> None:
        super().__init__(f"plan {plan} does not include {mode.value} mode")
        self.mode = mode
        self.plan = plan
        self.upgrades = upgrades


class UnknownJob(QuotaError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} in the store")
        self.job_id = job_id


class UnknownPlan(QuotaError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no plan {name!r}; plans are {', '.join(known)}")
        self.name = name
        self.known = known


class StoreError(QuotaError):
    """The database cannot be used; the message says which file and what to do."""


class StoreCorrupted(StoreError):
    pass


class SchemaTooNew(StoreError):
    pass
