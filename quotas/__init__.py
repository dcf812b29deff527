"""Songe's quota store: accounts, plans, the GPU-time ledger and the jobs table, on SQLite.

Knows SQL; knows neither Discord nor torch. Start with `QuotaStore.open`.
"""

from __future__ import annotations

from quotas.errors import (
    AccountTooNew,
    Banned,
    Cooldown,
    LaneNotAllowed,
    LimitReached,
    OutOfFastTime,
    QuotaError,
    Refused,
    SchemaTooNew,
    StoreCorrupted,
    StoreError,
    UnknownJob,
    UnknownPlan,
)
from quotas.models import (
    AccountView,
    AuditEntry,
    GuildPolicy,
    JobRecord,
    JobStatus,
    JobTicket,
    LedgerEntry,
    LedgerKind,
    Mode,
    Plan,
    Preferences,
    QuotaSettings,
    Renewal,
    Reservation,
    Stats,
)
from quotas.store import QuotaStore

__all__ = [
    "AccountTooNew",
    "AccountView",
    "AuditEntry",
    "Banned",
    "Cooldown",
    "GuildPolicy",
    "JobRecord",
    "JobStatus",
    "JobTicket",
    "LaneNotAllowed",
    "LedgerEntry",
    "LedgerKind",
    "LimitReached",
    "Mode",
    "OutOfFastTime",
    "Plan",
    "Preferences",
    "QuotaError",
    "QuotaSettings",
    "QuotaStore",
    "Refused",
    "Renewal",
    "Reservation",
    "SchemaTooNew",
    "Stats",
    "StoreCorrupted",
    "StoreError",
    "UnknownJob",
    "UnknownPlan",
]
