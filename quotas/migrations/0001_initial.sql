-- Songe quota store, schema 1. Amounts are integer milliseconds of GPU time; times are unix seconds (REAL).

CREATE TABLE plans (
    name                 TEXT PRIMARY KEY,
    rank                 INTEGER NOT NULL DEFAULT 0,
    fast_ms              INTEGER NOT NULL CHECK (fast_ms >= 0),
    renewal              TEXT NOT NULL CHECK (renewal IN ('none', 'monthly')),
    daily_topup_ms       INTEGER NOT NULL DEFAULT 0 CHECK (daily_topup_ms >= 0),
    relax_allowed        INTEGER NOT NULL CHECK (relax_allowed IN (0, 1)),
    turbo_allowed        INTEGER NOT NULL CHECK (turbo_allowed IN (0, 1)),
    private_allowed      INTEGER NOT NULL DEFAULT 0 CHECK (private_allowed IN (0, 1)),
    max_concurrent_fast  INTEGER NOT NULL CHECK (max_concurrent_fast >= 0),
    max_concurrent_relax INTEGER NOT NULL CHECK (max_concurrent_relax >= 0),
    max_queued           INTEGER NOT NULL CHECK (max_queued >= 0)
) STRICT;

-- Two buckets: plan_ms (this period's plan time, expires at renewal) and extra_ms (operator grants, never
-- expires). Both move only through the ledger trigger below and can never go negative.
CREATE TABLE accounts (
    user_id          INTEGER PRIMARY KEY,
    plan             TEXT NOT NULL REFERENCES plans (name),
    plan_until       REAL,                       -- the plan reverts to free at this time
    entitled_plan    TEXT,                       -- the plan came from a Discord entitlement
    plan_ms          INTEGER NOT NULL DEFAULT 0 CHECK (plan_ms >= 0),
    extra_ms         INTEGER NOT NULL DEFAULT 0 CHECK (extra_ms >= 0),
    period_total_ms  INTEGER NOT NULL DEFAULT 0, -- plan time granted for the current period
    anchor_at        REAL NOT NULL,              -- renewals fall on monthly anniversaries of this time
    period_start     REAL NOT NULL,
    renews_at        REAL,
    relax_ms         INTEGER NOT NULL DEFAULT 0, -- relax GPU time used this period
    topup_day        INTEGER,                    -- UTC day number of the last daily top-up
    last_job_at      REAL,
    lifetime_images  INTEGER NOT NULL DEFAULT 0,
    lifetime_gpu_ms  INTEGER NOT NULL DEFAULT 0,
    banned           INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
    ban_reason       TEXT,
    created_at       REAL NOT NULL
) STRICT;

CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES accounts (user_id),
    at          REAL NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('grant', 'renewal', 'reserve', 'settle', 'refund', 'adjust', 'expire')),
    plan_ms     INTEGER NOT NULL,
    extra_ms    INTEGER NOT NULL,
    job_id      TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    operator_id INTEGER,
    key         TEXT NOT NULL UNIQUE             -- idempotency key: 'reserve:<job>', 'settle:<job>', ...
) STRICT;
CREATE INDEX ledger_by_user ON ledger (user_id, id);

CREATE TRIGGER ledger_moves_balance AFTER INSERT ON ledger BEGIN
    UPDATE accounts SET plan_ms = plan_ms + NEW.plan_ms, extra_ms = extra_ms + NEW.extra_ms
     WHERE user_id = NEW.user_id;
END;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;

CREATE TABLE jobs (
    job_id            TEXT PRIMARY KEY,
    user_id           INTEGER NOT NULL REFERENCES accounts (user_id),
    kind              TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    mode              TEXT NOT NULL CHECK (mode IN ('fast', 'relax', 'turbo')),
    fell_back         INTEGER NOT NULL DEFAULT 0,
    relax_delay       REAL NOT NULL DEFAULT 0,
    request           TEXT NOT NULL,
    result            TEXT,
    guild_id          INTEGER,
    channel_id        INTEGER,
    message_id        INTEGER,
    parent_job_id     TEXT,
    image_index       INTEGER,
    work_units        REAL NOT NULL,
    images            INTEGER NOT NULL,
    period_start      REAL NOT NULL,             -- the account's period when reserved
    reserved_plan_ms  INTEGER NOT NULL,
    reserved_extra_ms INTEGER NOT NULL,
    charged_ms        INTEGER NOT NULL DEFAULT 0,
    unpaid_ms         INTEGER NOT NULL DEFAULT 0,
    refunded_ms       INTEGER NOT NULL DEFAULT 0,
    gpu_ms            INTEGER,
    created_at        REAL NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    delivered         INTEGER NOT NULL DEFAULT 0,
    failure           TEXT
) STRICT;
CREATE INDEX jobs_open ON jobs (user_id, mode) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_by_user ON jobs (user_id, created_at);
CREATE INDEX jobs_by_created ON jobs (created_at);
CREATE INDEX jobs_by_finished ON jobs (finished_at);
CREATE INDEX jobs_undelivered ON jobs (created_at) WHERE status = 'succeeded' AND delivered = 0;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value REAL NOT NULL
) STRICT;

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    operator_id INTEGER,
    action      TEXT NOT NULL,
    user_id     INTEGER,
    detail      TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TABLE preferences (
    user_id INTEGER PRIMARY KEY,
    mode    TEXT NOT NULL DEFAULT 'fast' CHECK (mode IN ('fast', 'relax', 'turbo')),
    aspect  TEXT,
    stylize INTEGER,
    remix   INTEGER NOT NULL DEFAULT 0,
    private INTEGER NOT NULL DEFAULT 0,
    suffix  TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE options (
    user_id INTEGER NOT NULL,
    name    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE guild_policies (
    guild_id               INTEGER PRIMARY KEY,
    nsfw_in_age_restricted INTEGER NOT NULL DEFAULT 0,
    author_only_buttons    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE guild_channels (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
) STRICT, WITHOUT ROWID;
