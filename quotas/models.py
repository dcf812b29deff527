"""Plain values that cross the `quotas` boundary: settings, plans, tickets, records and views.

Every type is a frozen dataclass or a `str` enum; times are timezone-aware UTC datetimes and
amounts are GPU seconds (floats; the database keeps integer milliseconds so that balances and
ledger sums stay exact).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class Mode(enum.StrEnum):
    """How a job is paid for: fast spends fast time, turbo twice that, relax nothing (and waits)."""

    FAST = "fast"
    RELAX = "relax"
    TURBO = "turbo"

    @property
    def cost_factor(self) -> int:
        """GPU seconds charged per GPU second used."""
        return {Mode.FAST: 1, Mode.RELAX: 0, Mode.TURBO: 2}[self]


class JobStatus(enum.StrEnum):
    """A job's life: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED (the last three are final)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in (JobStatus.QUEUED, JobStatus.RUNNING)


class Renewal(enum.StrEnum):
    """When a plan's fast time is refilled: never (a one-time allowance) or on the monthly anniversary."""

    NONE = "none"
    MONTHLY = "monthly"


class LedgerKind(enum.StrEnum):
    """What a ledger row records."""

    GRANT = "grant"  # free trial, daily top-up, operator grant of extra time
    RENEWAL = "renewal"  # a period's plan time (monthly renewal or a change of plan)
    RESERVE = "reserve"  # estimate held for a job
    SETTLE = "settle"  # reservation minus the measured cost (negative if the job ran over)
    REFUND = "refund"  # reservation returned in full
    ADJUST = "adjust"  # operator correction (negative grant, reset)
    EXPIRE = "expire"  # unspent plan time removed at the end of its period


FREE_PLAN = "free"


@dataclass(frozen=True, kw_only=True)
class QuotaSettings:
    """Configuration of the store; the bot builds it from its own settings.

    free_trial_seconds: the one-time fast time of a new account (seeds the `free` plan row).
    free_daily_topup_seconds: free accounts are topped up to this each UTC day (0 = never; seeds the row).
    free_cooldown_seconds: the least time between two jobs of a free-plan user.
    min_account_age_days: a free-plan user's Discord account must be this old to spend (0 = no check).
    default_seconds_per_unit: GPU seconds per work unit until finished jobs have taught the store better.
    seconds_per_unit_weight: weight of the newest sample in the running average of seconds per unit.
    relax_free_seconds, relax_delay_per_hour, relax_max_delay_seconds: the relax delay curve (`relax_delay`).
    busy_timeout_seconds: how long a connection waits for another writer's lock.
    """

    free_trial_seconds: float = 1440.0
    free_daily_topup_seconds: float = 0.0
    free_cooldown_seconds: float = 0.0
    min_account_age_days: int = 0
    default_seconds_per_unit: float = 0.05
    seconds_per_unit_weight: float = 0.2
    relax_free_seconds: float = 5 * 3600.0
    relax_delay_per_hour: float = 60.0
    relax_max_delay_seconds: float = 600.0
    busy_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "free_trial_seconds",
            "free_daily_topup_seconds",
            "free_cooldown_seconds",
            "min_account_age_days",
            "relax_free_seconds",
            "relax_delay_per_hour",
            "relax_max_delay_seconds",
            "busy_timeout_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"QuotaSettings.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.default_seconds_per_unit <= 0:
            raise ValueError(f"QuotaSettings.default_seconds_per_unit must be > 0, got {self.default_seconds_per_unit}")
        if not 0 < self.seconds_per_unit_weight <= 1:
            raise ValueError(
                f"QuotaSettings.seconds_per_unit_weight must be in (0, 1], got {self.seconds_per_unit_weight}"
            )

    def relax_delay(self, relax_seconds_used: float) -> float:
        """Seconds a relax job waits before it may start, given the user's relax GPU use this period.

        Nothing up to `relax_free_seconds` (5 h), then `relax_delay_per_hour` (60 s) more for each further
        hour of relax GPU time, capped at `relax_max_delay_seconds` (10 min, Midjourney's advertised worst).
        """
        over_hours = max(0.0, relax_seconds_used - self.relax_free_seconds) / 3600.0
        return min(self.relax_max_delay_seconds, over_hours * self.relax_delay_per_hour)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A row of the plans table; operators edit it with `QuotaStore.update_plan`."""

    name: str
    fast_seconds: float
    renewal: Renewal
    daily_topup_seconds: float = 0.0
    relax_allowed: bool = False
    turbo_allowed: bool = False
    private_allowed: bool = False  # results delivered privately (by direct message) instead of in the channel
    max_concurrent_fast: int = 1
    max_concurrent_relax: int = 0
    max_queued: int = 1
    rank: int = 0  # display order and upgrade route: higher is a bigger plan

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"plan name must be a short identifier, got {self.name!r}")
        object.__setattr__(self, "renewal", Renewal(self.renewal))
        for name in (
            "fast_seconds",
            "daily_topup_seconds",
            "max_concurrent_fast",
            "max_concurrent_relax",
            "max_queued",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"plan {self.name}: {name} must be >= 0, got {getattr(self, name)!r}")

    def allows(self, mode: Mode) -> bool:
        return {Mode.FAST: True, Mode.RELAX: self.relax_allowed, Mode.TURBO: self.turbo_allowed}[mode]

    def concurrency_limit(self, mode: Mode) -> int:
        return self.max_concurrent_relax if mode is Mode.RELAX else self.max_concurrent_fast


@dataclass(frozen=True, kw_only=True)
class JobTicket:
    """What the bot asks to reserve. `request` is opaque JSON; `mode` None means the user's default.

    `images` is how many images the job yields (a grid is 4), counted into the user's lifetime total.
    """

    job_id: str
    user_id: int
    kind: str
    work_units: float
    request: str
    mode: Mode | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    parent_job_id: str | None = None
    image_index: int | None = None
    account_created_at: datetime | None = None
    images: int = 1

    def __post_init__(self) -> None:
        if not math.isfinite(self.work_units) or self.work_units < 0:
            raise ValueError(f"job {self.job_id}: work_units must be a finite number >= 0, got {self.work_units!r}")


@dataclass(frozen=True)
class Reservation:
    """An accepted job: the mode it will run in and the GPU seconds held for it."""

    job_id: str
    user_id: int
    mode: Mode
    reserved_seconds: float
    fell_back_to_relax: bool
    relax_delay_seconds: float


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    """A row of the jobs table."""

    job_id: str
    user_id: int
    kind: str
    status: JobStatus
    mode: Mode
    request: str
    result: str | None
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    parent_job_id: str | None
    image_index: int | None
    reserved_seconds: float
    charged_seconds: float
    created_at: datetime
    finished_at: datetime | None
    delivered: bool  # the author has the outcome: the result posted, or told the job ended and was refunded
    work_units: float = 0.0
    images: int = 1
    fell_back_to_relax: bool = False
    relax_delay_seconds: float = 0.0
    gpu_seconds: float | None = None
    refunded_seconds: float = 0.0
    unpaid_seconds: float = 0.0  # cost over the reservation that an empty balance could not cover
    started_at: datetime | None = None
    failure: str | None = None  # the refund's reason


@dataclass(frozen=True, kw_only=True)
class AccountView:
    """What `/info` shows. `fast_remaining` is this period's plan time left; `extra_seconds` never expires."""

    user_id: int
    plan: Plan
    mode: Mode
    fast_remaining: float
    fast_period_total: float
    extra_seconds: float
    renews_at: datetime | None
    plan_until: datetime | None
    lifetime_images: int
    lifetime_gpu_seconds: float
    relax_seconds_period: float
    queued: int
    running: int
    banned: bool
    ban_reason: str | None

    @property
    def total_remaining(self) -> float:
        """Everything a fast job may spend: plan time first, then extra time."""
        return self.fast_remaining + self.extra_seconds


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One append-only ledger row; `seconds` is signed and `balance_after` is the running total."""

    id: int
    at: datetime
    kind: LedgerKind
    seconds: float
    balance_after: float
    job_id: str | None
    reason: str
    operator_id: int | None
    plan_seconds: float = 0.0  # the part of `seconds` in the plan bucket
    extra_seconds: float = 0.0  # the part in the extra bucket


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """An operator's (or an entitlement's) action; `detail` is JSON."""

    id: int
    at: datetime
    operator_id: int | None
    action: str
    user_id: int | None
    detail: str


@dataclass(frozen=True, kw_only=True)
class Stats:
    """Usage since `since`: jobs created by status, images and GPU time of jobs finished, users."""

    since: datetime
    jobs_by_status: Mapping[JobStatus, int]
    images: int
    gpu_seconds: float
    charged_seconds: float
    users_by_plan: Mapping[str, int]
    active_users: int
    new_users: int


@dataclass(frozen=True, kw_only=True)
class Preferences:
    """A user's `/settings` and `/prefer` choices; the bot interprets them."""

    mode: Mode = Mode.FAST
    aspect: str | None = None
    stylize: int | None = None
    remix: bool = False
    private: bool = False
    suffix: str = ""
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class GuildPolicy:
    """A server manager's settings. An empty `allowed_channel_ids` allows every channel."""

    guild_id: int
    allowed_channel_ids: frozenset[int] = frozenset()
    nsfw_in_age_restricted: bool = False
    author_only_buttons: bool = False
