"""The gateway's schema as numbered migrations: a database made by any earlier version upgrades in place.

Instructors prepare machines days ahead, so keys, plans and ledgers written by an
older version must keep working. Each migration runs once, in its own transaction,
and is recorded in ``schema_migrations``. Version 1 is the schema of commit 0478c47
(the first released gateway); later versions only add to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import psycopg

from . import reader


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


ROLLUP_KEYS = ("user_name", "team", "application", "model", "status")
ROLLUP_SUMS = ("requests", "prompt_tokens", "completion_tokens", "cost_usd")
ROLLUPS = {"hour": "usage_hourly", "day": "usage_daily", "month": "usage_monthly"}  # period -> its rollup table


def roll_up(period: str, rows: str, rolled_by: str | None = None, accumulate: bool = False) -> str:
    """The one INSERT that adds rows to the rollup of a period (hour, day, month), summed per period and key.

    ``rows``: ledger rows (the ledger, or the rows a statement just inserted), or a finer rollup's rows when
    ``rolled_by`` names its period column (a day is the sum of its 24 hours). ``accumulate``: add to the sums
    already there (rows arriving live) instead of filling an empty table (backfills, bulk loads).
    """
    keys, sums = ", ".join(ROLLUP_KEYS), ", ".join(ROLLUP_SUMS)
    time, requests = (rolled_by, "sum(requests)") if rolled_by else ("ts", "count(*)")
    statement = (f"INSERT INTO {ROLLUPS[period]} AS u ({period}, {keys}, {sums}) "
                 f"SELECT date_trunc('{period}', {time}, 'UTC'), {keys}, {requests}, sum(prompt_tokens), "
                 f"sum(completion_tokens), sum(cost_usd) FROM {rows} GROUP BY 1, 2, 3, 4, 5, 6")
    if accumulate:
        added = ", ".join(f"{column} = u.{column} + EXCLUDED.{column}" for column in ROLLUP_SUMS)
        statement += f" ON CONFLICT ({period}, {keys}) DO UPDATE SET {added}"
    return statement


# The rollups of all the ledger holds, computed at once, each from the next finer one: by bulk loads into an
# empty ledger (usage.bulk_load). Rows written later add themselves to all three (store.APPEND_ROWS_SQL).
ROLLUPS_FROM_LEDGER = (roll_up("hour", "ledger"), roll_up("day", "usage_hourly", rolled_by="hour"),
                       roll_up("month", "usage_daily", rolled_by="day"))

MIGRATIONS = (
    Migration(1, "plans, users, applications (keys) and the usage ledger (as released in 0478c47)", """
CREATE TABLE IF NOT EXISTS plans (
    name               text PRIMARY KEY,
    rpm                integer NOT NULL CHECK (rpm > 0),
    tpm                integer NOT NULL CHECK (tpm > 0),
    monthly_budget_usd double precision NOT NULL CHECK (monthly_budget_usd >= 0)
);
CREATE TABLE IF NOT EXISTS users (
    name              text PRIMARY KEY,
    team              text NOT NULL DEFAULT 'unassigned',
    blocked           boolean NOT NULL DEFAULT false,
    monthly_token_cap bigint CHECK (monthly_token_cap >= 0),
    portal_token_hash text UNIQUE
);
CREATE TABLE IF NOT EXISTS applications (
    id         bigserial PRIMARY KEY,
    user_name  text NOT NULL REFERENCES users (name),
    name       text NOT NULL,
    key_hash   text NOT NULL UNIQUE,
    key_hint   text NOT NULL,
    models     text[] NOT NULL,
    plan       text NOT NULL REFERENCES plans (name),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    UNIQUE (user_name, name)
);
CREATE TABLE IF NOT EXISTS ledger (
    id                bigserial PRIMARY KEY,
    ts                timestamptz NOT NULL,
    user_name         text NOT NULL,
    team              text NOT NULL,
    application       text NOT NULL,
    model             text NOT NULL,
    prompt_tokens     integer NOT NULL,
    completion_tokens integer NOT NULL,
    latency_ms        real NOT NULL,
    status            text NOT NULL,
    cost_usd          double precision NOT NULL,
    request_id        text
);
ALTER TABLE users ADD COLUMN IF NOT EXISTS portal_token_hash text UNIQUE;
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger (ts);
CREATE INDEX IF NOT EXISTS ledger_user_ts ON ledger (user_name, ts);
"""),
    Migration(2, "plans granted by admins, key expiry and rotation, one row per request, hourly rollups", """
-- Plans belong to the platform team: each user has one, granted by an admin. A user keeps the
-- plan of their newest active application (what they were using), 'standard' otherwise.
INSERT INTO plans VALUES ('standard', 600, 200000, 5.0) ON CONFLICT (name) DO NOTHING;
ALTER TABLE users ADD COLUMN plan text REFERENCES plans (name);
UPDATE users u SET plan = coalesce(
    (SELECT a.plan FROM applications a WHERE a.user_name = u.name AND a.revoked_at IS NULL ORDER BY a.id DESC LIMIT 1),
    'standard');
ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'standard', ALTER COLUMN plan SET NOT NULL;
CREATE TABLE plan_requests (
    id           bigserial PRIMARY KEY,
    user_name    text NOT NULL REFERENCES users (name),
    plan         text NOT NULL REFERENCES plans (name),
    reason       text NOT NULL DEFAULT '',
    requested_at timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz,
    decision     text CHECK (decision IN ('granted', 'declined'))
);
-- Keys can expire; a rotated key keeps working for a short grace period.
ALTER TABLE applications ADD COLUMN expires_at timestamptz,
                         ADD COLUMN previous_key_hash text UNIQUE,
                         ADD COLUMN previous_key_valid_until timestamptz;
-- One ledger row per request: a retried write of the same request id is ignored. Rows an
-- earlier version wrote twice are moved aside (kept for audit), not deleted.
ALTER TABLE ledger ADD COLUMN ttft_ms real;
CREATE TABLE ledger_duplicates (LIKE ledger);
WITH extra AS (
    DELETE FROM ledger a USING ledger b
    WHERE a.request_id IS NOT NULL AND a.request_id = b.request_id AND a.id > b.id
    RETURNING a.*)
INSERT INTO ledger_duplicates SELECT * FROM extra;
CREATE UNIQUE INDEX ledger_request_id ON ledger (request_id);
-- Refusals are counted per hour, not written row by row (a blocked user cannot flood the ledger).
CREATE TABLE refusals_hourly (
    hour        timestamptz NOT NULL,
    user_name   text NOT NULL,
    application text NOT NULL,
    reason      text NOT NULL,
    requests    bigint NOT NULL,
    PRIMARY KEY (hour, user_name, application, reason)
);
-- Hourly rollups of the ledger, kept in step with it (see store.APPEND_ROWS_SQL): the budgets,
-- caps, the portal's charts and Lab 6 read these, never the whole ledger.
CREATE TABLE usage_hourly (
    hour              timestamptz NOT NULL,
    user_name         text NOT NULL,
    team              text NOT NULL,
    application       text NOT NULL,
    model             text NOT NULL,
    status            text NOT NULL,
    requests          bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cost_usd          double precision NOT NULL,
    PRIMARY KEY (hour, user_name, team, application, model, status)
);
CREATE INDEX usage_hourly_user_hour ON usage_hourly (user_name, hour);
""" + roll_up("hour", "ledger") + ";\n"),
    Migration(3, "monthly rollups beside the hourly ones; the planner told that a user has one team", """
-- A month of 19,000 employees is ~4 M hourly rollup rows but ~80,000 monthly ones: bills, caps,
-- top consumers and a year of views read these. The same statement as the hourly rows writes them
-- (store.APPEND_ROWS_SQL), so both stay equal to the ledger.
CREATE TABLE usage_monthly (
    month             timestamptz NOT NULL,
    user_name         text NOT NULL,
    team              text NOT NULL,
    application       text NOT NULL,
    model             text NOT NULL,
    status            text NOT NULL,
    requests          bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cost_usd          double precision NOT NULL,
    PRIMARY KEY (month, user_name, team, application, model, status)
);
""" + roll_up("month", "usage_hourly", rolled_by="hour") + """;
-- Without this the planner multiplies users by teams, expects a huge result and sorts instead of hashing.
CREATE STATISTICS usage_hourly_user_team (ndistinct) ON user_name, team FROM usage_hourly;
CREATE STATISTICS usage_monthly_user_team (ndistinct) ON user_name, team FROM usage_monthly;
"""),
    Migration(4, "the raw ledger partitioned by month (retention drops a month at once)", """
-- A platform team keeps a year of raw rows for audit and drops older months: with one partition per
-- month that is DROP TABLE (store.drop_ledger_month), not a DELETE of millions of rows. The rollups keep
-- the months' sums. A unique key of a partitioned table must hold the partition column: rows are unique
-- on (request_id, ts) -- a retried write of a request carries its row's time, so it is still ignored.
ALTER TABLE ledger RENAME TO ledger_unpartitioned;
ALTER SEQUENCE ledger_id_seq OWNED BY NONE;
ALTER INDEX ledger_pkey RENAME TO ledger_unpartitioned_pkey;
ALTER INDEX ledger_request_id RENAME TO ledger_unpartitioned_request_id;
ALTER INDEX IF EXISTS ledger_ts RENAME TO ledger_unpartitioned_ts;
ALTER INDEX IF EXISTS ledger_user_ts RENAME TO ledger_unpartitioned_user_ts;
CREATE TABLE ledger (LIKE ledger_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (ts);
ALTER TABLE ledger ADD CONSTRAINT ledger_pkey PRIMARY KEY (id, ts);
CREATE UNIQUE INDEX ledger_request_id ON ledger (request_id, ts);
CREATE INDEX ledger_ts ON ledger (ts);
CREATE INDEX ledger_user_ts ON ledger (user_name, ts);
CREATE TABLE ledger_default PARTITION OF ledger DEFAULT;  -- rows of a month without its partition
-- A month's partition, made by writers before its rows arrive (store.ensure_ledger_months, the gateway).
CREATE FUNCTION ledger_month_partition(month timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE first timestamptz := date_trunc('month', month, 'UTC');
BEGIN
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF ledger FOR VALUES FROM (%L) TO (%L)',
                   'ledger_' || to_char(first AT TIME ZONE 'UTC', 'YYYY_MM'), first,
                   date_trunc('month', first + interval '35 days', 'UTC'));
EXCEPTION WHEN check_violation OR unique_violation OR duplicate_table THEN
    NULL;  -- the default partition holds rows of that month (they stay there), or another writer made it
END $$;
SELECT ledger_month_partition(month)
FROM (SELECT DISTINCT date_trunc('month', ts, 'UTC') AS month FROM ledger_unpartitioned) AS months;
INSERT INTO ledger SELECT * FROM ledger_unpartitioned;
DROP TABLE ledger_unpartitioned;
ALTER SEQUENCE ledger_id_seq OWNED BY ledger.id;
"""),
    Migration(5, "probe keys: the instructor's checks reach a model as an attendee, kept out of billing and caps", """
-- `python -m helpers instructor check` proves each attendee's access end to end with a key an admin
-- issues for it (real keys are shown once and belong to the attendee). Its requests are not billed,
-- not written to the ledger and not counted against the attendee's budget or cap.
ALTER TABLE applications ADD COLUMN probe boolean NOT NULL DEFAULT false;
"""),
    Migration(6, "daily rollups beside the hourly and monthly ones (the portal's 30-day views)", """
-- A month of 19,000 employees is ~4 M hourly rollup rows: the portal's 30-day views read them all, twice.
-- Per day it is a fifth of that (the synthetic month: 3,992,037 hourly rows, 873,418 daily ones). Filled
-- from the hourly rollups, not the ledger: they keep the sums of months whose raw rows were dropped
-- (retention). New rows add themselves (store.APPEND_ROWS_SQL); upgrading that month takes ~13 s.
CREATE TABLE usage_daily (
    day               timestamptz NOT NULL,
    user_name         text NOT NULL,
    team              text NOT NULL,
    application       text NOT NULL,
    model             text NOT NULL,
    status            text NOT NULL,
    requests          bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cost_usd          double precision NOT NULL,
    PRIMARY KEY (day, user_name, team, application, model, status)
);
""" + roll_up("day", "usage_hourly", rolled_by="hour") + """;
CREATE INDEX usage_daily_user_day ON usage_daily (user_name, day);
CREATE STATISTICS usage_daily_user_team (ndistinct) ON user_name, team FROM usage_daily;
ANALYZE usage_daily;
"""),
    Migration(7, "the ledger's read-only role: Lab 6 reads the ledger and its rollups, nothing else", f"""
-- On a shared cluster every attendee reads the ledger (Lab 6): as {reader.ROLE}, SELECT on the ledger and its
-- rollups only (not keys, portal tokens or plans). On the cluster the PostgreSQL pod's start script creates the
-- role with its password (helpers/gateway/reader.py); here it is made without a login where this user may.
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{reader.ROLE}') THEN
        CREATE ROLE {reader.ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'the role {reader.ROLE} does not exist and % may not create it: restart the PostgreSQL pod '
        '(its start script creates it, manifests/base/gateway), then the gateway', current_user;
END $$;
GRANT SELECT ON {", ".join(reader.TABLES)} TO {reader.ROLE};
"""),
    Migration(8, "admin scopes: an admin key that manages the users (and plans) it registered, and no others", """
-- On a shared cluster each attendee acts as the platform team in Labs 5 and 6. The instructor gives each one an
-- admin key of their own scope (helpers.gateway.scopes) instead of the gateway's admin key: it registers users
-- into its scope and manages them and the plans it made; everything else it is refused (403). Existing users and
-- plans have no scope: the platform team's (the gateway's admin key) alone.
CREATE TABLE admin_scopes (
    name       text PRIMARY KEY,
    key_hash   text NOT NULL UNIQUE,
    key_hint   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE users ADD COLUMN admin_scope text;
ALTER TABLE plans ADD COLUMN admin_scope text;
CREATE INDEX users_admin_scope ON users (admin_scope) WHERE admin_scope IS NOT NULL;
"""),
)

LATEST = MIGRATIONS[-1].version


def applied_versions(conn: psycopg.Connection) -> set[int]:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                 "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(dsn: str, up_to: int = LATEST) -> list[int]:
    """Apply the migrations this database lacks, in order, each in one transaction; the versions applied.

    ``up_to``: stop after that version (a test makes the database an older version left, then upgrades it)."""
    applied: list[int] = []
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_lock(4242)")  # two processes starting at once: one migrates
        try:
            done = applied_versions(conn)
            conn.commit()
            for migration in MIGRATIONS:
                if migration.version in done or migration.version > up_to:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute("INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                                 (migration.version, migration.description))
                applied.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(4242)")
            conn.commit()
    return applied
