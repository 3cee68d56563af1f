"""The gateway's own tables: plans, users, applications (keys) and the usage ledger.

Keys are shown once, when an application is created, and stored only as their
SHA-256 (they are long random strings, so a plain hash is the right tool).
This module needs only psycopg: the LiteLLM plugin (its own venv) and the
notebooks (the workshop venv) share it.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg.rows import dict_row

from . import migrations

KEY_PREFIX = "sk-maas-"
DSN_ENV = "MAAS_GATEWAY_DSN"  # how the plugin inside LiteLLM finds the database
SPILL_ENV = "MAAS_GATEWAY_SPILL"  # where the plugin keeps rows it could not write when the gateway stops

LEDGER_COLUMNS = ("ts", "user_name", "team", "application", "model", "prompt_tokens",
                  "completion_tokens", "latency_ms", "status", "cost_usd", "request_id")
WRITTEN_COLUMNS = LEDGER_COLUMNS + ("ttft_ms",)  # what the gateway writes per request
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,79}")  # application names: no "/", no control characters
ROTATION_GRACE = timedelta(minutes=10)  # a rotated key keeps working this long

DEFAULT_PLANS = {  # name: (requests/min, tokens/min, monthly budget in USD)
    "trial": (30, 20_000, 0.05),
    "standard": (600, 200_000, 5.00),
    "unlimited": (100_000, 100_000_000, 1_000_000.0),
}


class StoreError(ValueError):
    """Bad input for the key store: the message says what to do instead."""


@dataclass(frozen=True)
class Application:
    """An application as its owner sees it; the key itself only once, at creation or rotation."""

    id: int
    user: str
    name: str
    models: list[str]
    plan: str
    key_hint: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None
    key: str | None = None  # set only in the answer to create_application / rotate_application

    def __repr__(self) -> str:  # a key never lands in a notebook output by accident
        shown = "'sk-maas-…(shown once)'" if self.key else None
        return (f"Application(id={self.id}, user={self.user!r}, name={self.name!r}, models={self.models}, "
                f"plan={self.plan!r}, key_hint={self.key_hint!r}, expires_at={self.expires_at}, key={shown})")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


def init_schema(dsn: str, plans: dict[str, tuple[int, int, float]] = DEFAULT_PLANS) -> list[int]:
    """Bring the tables to the latest version (migrations; idempotent) and add missing default plans."""
    applied = migrations.migrate(dsn)
    with connect(dsn) as conn:
        for name, (rpm, tpm, budget) in plans.items():
            conn.execute("INSERT INTO plans VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                         (name, rpm, tpm, budget))
    return applied


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def _key_hint(key: str) -> str:
    return key[:len(KEY_PREFIX) + 4]


def _plan_names(conn: psycopg.Connection) -> list[str]:
    return [row["name"] for row in conn.execute("SELECT name FROM plans ORDER BY name")]


def _check_plan(conn: psycopg.Connection, plan: str) -> None:
    if plan not in _plan_names(conn):
        raise StoreError(f"unknown plan {plan!r}; plans: {_plan_names(conn)}")


def _user_row(conn: psycopg.Connection, user: str) -> dict:
    row = conn.execute("SELECT * FROM users WHERE name = %s", (user,)).fetchone()
    if row is None:
        raise StoreError(f"unknown user {user!r}; the platform team registers users first")
    return row


# --- users and their portal logins -------------------------------------------------------

def ensure_user(dsn: str, user: str, team: str = "unassigned", plan: str = "standard",
                admin_scope: str | None = None) -> None:
    """Register a user on a plan (idempotent; an existing user keeps their team, plan and admin scope)."""
    if not user or not user.strip() or not NAME_PATTERN.fullmatch(user):
        raise StoreError(f"user name {user!r}: use letters, digits, '.', '_', '-' (at most 80 characters)")
    with connect(dsn) as conn:
        _check_plan(conn, plan)
        conn.execute("INSERT INTO users (name, team, plan, admin_scope) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT (name) DO NOTHING", (user, team, plan, admin_scope))


def issue_portal_token(dsn: str, user: str) -> str:
    """A new portal token for a user (the old one stops working); shown once."""
    token = "pt-" + secrets.token_urlsafe(24)
    with connect(dsn) as conn:
        row = conn.execute("UPDATE users SET portal_token_hash = %s WHERE name = %s RETURNING name",
                           (hash_key(token), user)).fetchone()
    if row is None:
        raise StoreError(f"unknown user {user!r}; register it first (ensure_user)")
    return token


def user_for_portal_token(dsn: str, token: str) -> str | None:
    with connect(dsn) as conn:
        row = conn.execute("SELECT name FROM users WHERE portal_token_hash = %s", (hash_key(token),)).fetchone()
    return row["name"] if row else None


# --- applications and their keys ---------------------------------------------------------

def create_application(dsn: str, user: str, name: str, models: list[str], known_models: list[str] | None = None,
                       expires_in_days: float | None = None, plan: str | None = None) -> Application:
    """A new application with a fresh key for the given models, on the user's plan. The key is shown once.

    Plans are granted by the platform team (``grant_plan``); naming another plan here is refused.
    """
    if not NAME_PATTERN.fullmatch(name or ""):
        raise StoreError(f"application name {name!r}: use letters, digits, spaces, '.', '_', '-' "
                         "(at most 80 characters, no '/')")
    if not models:
        raise StoreError("an application needs at least one model")
    unknown = sorted(set(models) - set(known_models)) if known_models is not None else []
    if unknown:
        raise StoreError(f"unknown model(s) {unknown}; the gateway serves {sorted(known_models)}")
    if expires_in_days is not None and expires_in_days <= 0:
        raise StoreError("expires_in_days must be positive (or omitted for a key that does not expire)")
    key = _new_key()
    with connect(dsn) as conn:
        granted = _user_row(conn, user)["plan"]
        if plan is not None and plan != granted:
            raise StoreError(f"your plan is {granted!r}; plans are granted by the platform team. "
                             f"Ask for {plan!r} with a plan request (Portal.request_plan).")
        expires = datetime.now(timezone.utc) + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            row = conn.execute(
                "INSERT INTO applications (user_name, name, key_hash, key_hint, models, plan, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
                (user, name, hash_key(key), _key_hint(key), list(models), granted, expires)).fetchone()
        except psycopg.errors.UniqueViolation:
            raise StoreError(f"{user!r} already has an application named {name!r} (revoked ones keep "
                             "their name); pick another name") from None
    return _application(row, granted, key)


def _application(row: dict, plan: str, key: str | None = None) -> Application:
    return Application(row["id"], row["user_name"], row["name"], list(row["models"]), plan, row["key_hint"],
                       row["created_at"], row["revoked_at"], row.get("expires_at"), key)


def list_applications(dsn: str, user: str) -> list[Application]:
    """A user's applications, newest first (keys are never shown again)."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT a.*, u.plan AS user_plan FROM applications a JOIN users u ON u.name = a.user_name "
                            "WHERE a.user_name = %s ORDER BY a.id DESC", (user,))
        return [_application(row, row["user_plan"]) for row in rows]


def revoke_application(dsn: str, user: str, name: str) -> None:
    """Revoke an application's key (and a rotated-out key still in its grace period) at once; usage stays."""
    with connect(dsn) as conn:
        row = conn.execute("UPDATE applications SET revoked_at = now(), previous_key_valid_until = NULL "
                           "WHERE user_name = %s AND name = %s AND revoked_at IS NULL RETURNING id",
                           (user, name)).fetchone()
    if row is None:
        raise StoreError(f"{user!r} has no active application named {name!r}")


def rotate_application(dsn: str, user: str, name: str, grace: timedelta = ROTATION_GRACE) -> Application:
    """A new key for an application; the old one keeps working for ``grace``, then stops. Shown once."""
    key = _new_key()
    with connect(dsn) as conn:
        row = conn.execute(
            "UPDATE applications SET previous_key_hash = key_hash, previous_key_valid_until = now() + %s, "
            "key_hash = %s, key_hint = %s WHERE user_name = %s AND name = %s AND revoked_at IS NULL RETURNING *",
            (grace, hash_key(key), _key_hint(key), user, name)).fetchone()
        if row is None:
            raise StoreError(f"{user!r} has no active application named {name!r}")
        plan = _user_row(conn, user)["plan"]
    return _application(row, plan, key)


# --- the instructor's room: probe keys, one attendee's keys and usage ------------------

PROBE_APPLICATION = "instructor-probe"  # the application of a user's probe key (admin-issued, never billed)


def issue_probe_key(dsn: str, user: str, models: list[str]) -> str:
    """A probe key for a user (admin): it reaches ``models`` as that user, is never billed nor counted against
    their budget or cap, and replaces their previous probe key. Revoke it after use (``revoke_probe_key``)."""
    key = _new_key()
    with connect(dsn) as conn, conn.transaction():
        plan = _user_row(conn, user)["plan"]
        row = conn.execute(
            "UPDATE applications SET key_hash = %s, key_hint = %s, models = %s, revoked_at = NULL, "
            "previous_key_hash = NULL, previous_key_valid_until = NULL, expires_at = now() + interval '1 hour' "
            "WHERE user_name = %s AND name = %s AND probe RETURNING id",
            (hash_key(key), _key_hint(key), list(models), user, PROBE_APPLICATION)).fetchone()
        if row is None:
            conn.execute("INSERT INTO applications (user_name, name, key_hash, key_hint, models, plan, expires_at, "
                         "probe) VALUES (%s, %s, %s, %s, %s, %s, now() + interval '1 hour', true)",
                         (user, PROBE_APPLICATION, hash_key(key), _key_hint(key), list(models), plan))
    return key


def revoke_probe_key(dsn: str, user: str) -> bool:
    """Revoke a user's probe key (True when one was active)."""
    with connect(dsn) as conn:
        return conn.execute("UPDATE applications SET revoked_at = now() WHERE user_name = %s AND name = %s "
                            "AND probe AND revoked_at IS NULL RETURNING id", (user, PROBE_APPLICATION)).fetchone() is not None


def active_applications(dsn: str, user: str) -> list[str]:
    """The names of a user's applications whose keys still work (probe keys included)."""
    with connect(dsn) as conn:
        return [row["name"] for row in conn.execute(
            "SELECT name FROM applications WHERE user_name = %s AND revoked_at IS NULL ORDER BY name", (user,))]


def revoke_all_applications(dsn: str, user: str) -> list[str]:
    """Revoke every key of a user at once (their usage stays); the names revoked."""
    with connect(dsn) as conn:
        return sorted(row["name"] for row in conn.execute(
            "UPDATE applications SET revoked_at = now(), previous_key_valid_until = NULL "
            "WHERE user_name = %s AND revoked_at IS NULL RETURNING name", (user,)))


def forget_usage(dsn: str, user: str) -> dict[str, int]:
    """Delete a user's ledger rows, rollups and refusal counts (the instructor's --forget-usage); rows deleted per table."""
    deleted = {}
    with connect(dsn) as conn, conn.transaction():
        for table in ("ledger", *migrations.ROLLUPS.values(), "refusals_hourly"):
            deleted[table] = conn.execute(f"DELETE FROM {table} WHERE user_name = %s", (user,)).rowcount
    return deleted


def users(dsn: str, admin_scope: str | None = None) -> list[dict]:
    """Every user (of one admin scope when given) with their team, plan, cap, block and whether they have a portal
    login."""
    with connect(dsn) as conn:
        return list(conn.execute("SELECT name, team, plan, blocked, monthly_token_cap, "
                                 "portal_token_hash IS NOT NULL AS has_portal_login FROM users "
                                 "WHERE %s::text IS NULL OR admin_scope = %s ORDER BY name", (admin_scope, admin_scope)))


def export_ledger_csv(dsn: str) -> str:
    """The whole raw ledger as CSV with a header (what teardown keeps before a room goes)."""
    with connect(dsn) as conn, conn.cursor() as cursor:
        with cursor.copy("COPY (SELECT * FROM ledger ORDER BY ts, id) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            return b"".join(bytes(chunk) for chunk in copy).decode()


# --- plans: asked for by developers, granted by the platform team ------------------------

def request_plan(dsn: str, user: str, plan: str, reason: str = "") -> dict:
    """A developer asks for a plan; an admin grants or declines it."""
    with connect(dsn) as conn:
        _check_plan(conn, plan)
        if _user_row(conn, user)["plan"] == plan:  # asking twice (a notebook run again) is not an error
            return {"user_name": user, "plan": plan, "status": "already granted"}
        return conn.execute("INSERT INTO plan_requests (user_name, plan, reason) VALUES (%s, %s, %s) "
                            "RETURNING id, user_name, plan, reason, requested_at, 'pending' AS status",
                            (user, plan, reason[:500])).fetchone()


def plan_requests(dsn: str, pending_only: bool = True, admin_scope: str | None = None) -> list[dict]:
    """Plan requests (pending ones by default; of one admin scope's users when given)."""
    with connect(dsn) as conn:
        return list(conn.execute("SELECT * FROM plan_requests WHERE (NOT %(pending)s OR decided_at IS NULL) AND "
                                 "(%(scope)s::text IS NULL OR user_name IN (SELECT name FROM users WHERE admin_scope = %(scope)s)) ORDER BY id", {"pending": pending_only, "scope": admin_scope}))


def grant_plan(dsn: str, user: str, plan: str) -> None:
    """Put a user on a plan (admin); every key of theirs follows within a second. Closes their pending requests."""
    with connect(dsn) as conn, conn.transaction():
        _check_plan(conn, plan)
        _user_row(conn, user)
        conn.execute("UPDATE users SET plan = %s WHERE name = %s", (plan, user))
        conn.execute("UPDATE plan_requests SET decided_at = now(), "
                     "decision = CASE WHEN plan = %s THEN 'granted' ELSE 'declined' END "
                     "WHERE user_name = %s AND decided_at IS NULL", (plan, user))


def set_plan(dsn: str, name: str, rpm: int, tpm: int, monthly_budget_usd: float) -> None:
    """Create or change a plan (admin); every user on it follows within a second."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise StoreError(f"plan name {name!r}: use letters, digits, '.', '_', '-'")
    with connect(dsn) as conn:
        conn.execute("INSERT INTO plans VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                     "rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm, monthly_budget_usd = EXCLUDED.monthly_budget_usd",
                     (name, rpm, tpm, monthly_budget_usd))


def plans(dsn: str) -> list[dict]:
    with connect(dsn) as conn:
        return list(conn.execute("SELECT * FROM plans ORDER BY monthly_budget_usd, name"))


# --- admin: caps and blocks --------------------------------------------------------------

def cap_user(dsn: str, user: str, monthly_tokens: int | None) -> None:
    """Cap a user's tokens this month (None lifts the cap)."""
    _update_user(dsn, user, "monthly_token_cap", monthly_tokens)


def block_user(dsn: str, user: str, blocked: bool = True) -> None:
    """Block (or unblock) every key of a user at once."""
    _update_user(dsn, user, "blocked", blocked)


def _update_user(dsn: str, user: str, column: str, value) -> None:
    with connect(dsn) as conn:
        row = conn.execute(f"UPDATE users SET {column} = %s WHERE name = %s RETURNING name", (value, user)).fetchone()
    if row is None:
        raise StoreError(f"unknown user {user!r}")


# --- usage, from the hourly rollups -------------------------------------------------------

def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def usage_summary(dsn: str, user: str | None = None, since: datetime | None = None,
                  admin_scope: str | None = None) -> list[dict]:
    """Requests, tokens and cost per user, application and model (one user, one admin scope's users, or everyone)."""
    query = ("SELECT user_name, application, model, sum(requests) AS requests, "
             "sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, "
             "sum(cost_usd) AS cost_usd FROM usage_hourly WHERE hour >= %(since)s "
             "AND (%(user)s::text IS NULL OR user_name = %(user)s) AND (%(scope)s::text IS NULL OR user_name IN (SELECT name FROM users WHERE admin_scope = %(scope)s)) "
             "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    params = {"since": _hour(since or month_start()), "user": user, "scope": admin_scope}
    with connect(dsn) as conn:
        return [_plain(row) for row in conn.execute(query, params)]


def top_consumers(dsn: str, limit: int = 10, since: datetime | None = None,
                  admin_scope: str | None = None) -> list[dict]:
    """The users (of one admin scope when given) with the most tokens since a time (this month by default)."""
    with connect(dsn) as conn:
        return [_plain(row) for row in conn.execute(
            "SELECT user_name, team, sum(requests) AS requests, sum(prompt_tokens + completion_tokens) AS tokens, "
            "sum(cost_usd) AS cost_usd FROM usage_hourly WHERE hour >= %(since)s AND (%(scope)s::text IS NULL OR user_name IN (SELECT name FROM users WHERE admin_scope = %(scope)s)) "
            "GROUP BY 1, 2 ORDER BY tokens DESC LIMIT %(limit)s",
            {"since": _hour(since or month_start()), "scope": admin_scope, "limit": limit})]


def refusals(dsn: str, user: str | None = None, since: datetime | None = None) -> list[dict]:
    """Refused requests per user, application and reason (counted per hour, not stored one by one)."""
    with connect(dsn) as conn:
        return [_plain(row) for row in conn.execute(
            "SELECT user_name, application, reason, sum(requests) AS requests FROM refusals_hourly "
            "WHERE hour >= %s AND (%s::text IS NULL OR user_name = %s) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            (_hour(since or month_start()), user, user))]


def remaining(dsn: str, user: str) -> dict:
    """What a user has left this month: budget (their plan) and tokens (their cap)."""
    with connect(dsn) as conn:
        who = conn.execute(MONTH_USAGE_SQL, (user, month_start())).fetchone()
        row = conn.execute("SELECT u.plan, u.monthly_token_cap, p.monthly_budget_usd, p.rpm, p.tpm FROM users u "
                           "JOIN plans p ON p.name = u.plan WHERE u.name = %s", (user,)).fetchone()
    if row is None:
        raise StoreError(f"unknown user {user!r}")
    return usage_left(row, float(who["spend"]), int(who["tokens"]))


def usage_left(row: dict, spend: float, tokens: int) -> dict:
    """Plan, spend and what is left, from a user's plan row and this month's usage (shared with the plugin)."""
    cap = row["monthly_token_cap"]
    return {"plan": row["plan"], "monthly_budget_usd": row["monthly_budget_usd"], "spent_usd": spend,
            "budget_left_usd": max(0.0, row["monthly_budget_usd"] - spend), "tokens_used": tokens,
            "monthly_token_cap": cap, "tokens_left": None if cap is None else max(0, cap - tokens)}


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _plain(row: dict) -> dict:
    """Numbers as int/float (PostgreSQL's sums arrive as Decimal)."""
    return {k: (int(v) if k in ("requests", "prompt_tokens", "completion_tokens", "tokens") and v is not None
                else float(v) if k == "cost_usd" and v is not None else v) for k, v in row.items()}


# --- the plugin's queries (it runs them on its own async connections, inside LiteLLM) ------

KEY_LOOKUP_SQL = (  # everything needed to admit a request made with a key (current or in its grace period)
    "SELECT a.id, a.user_name, a.name AS application, a.models, a.revoked_at, a.expires_at, "
    "a.key_hash = %(hash)s AS current_key, a.previous_key_valid_until, u.team, u.blocked, "
    "u.monthly_token_cap, u.plan, p.rpm, p.tpm, p.monthly_budget_usd, a.probe "
    "FROM applications a JOIN users u ON u.name = a.user_name JOIN plans p ON p.name = u.plan "
    "WHERE a.key_hash = %(hash)s OR a.previous_key_hash = %(hash)s")
MONTH_USAGE_SQL = (  # params: user, month start -> the user's spend and tokens this month, from the rollups
    "SELECT coalesce(sum(cost_usd), 0) AS spend, coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens "
    "FROM usage_hourly WHERE user_name = %s AND hour >= %s")

_ROLLUP = ", ".join(migrations.ROLLUP_KEYS)

# The one way rows enter the ledger: new rows, and their hourly, daily and monthly rollups, in one statement.
APPEND_ROWS_SQL = (
    "WITH new AS (INSERT INTO ledger ({columns}) {source} ON CONFLICT (request_id, ts) DO NOTHING "
    "RETURNING ts, " + _ROLLUP + ", prompt_tokens, completion_tokens, cost_usd), "
    "hourly AS (" + migrations.roll_up("hour", "new", accumulate=True) + "), "
    "daily AS (" + migrations.roll_up("day", "new", accumulate=True) + ") "
    + migrations.roll_up("month", "new", accumulate=True))
_TYPES = {"ts": "timestamptz", "prompt_tokens": "integer", "completion_tokens": "integer", "latency_ms": "real",
          "cost_usd": "double precision", "ttft_ms": "real"}
BATCH_INSERT_SQL = APPEND_ROWS_SQL.format(  # params: one array per column of WRITTEN_COLUMNS
    columns=", ".join(WRITTEN_COLUMNS),
    source="SELECT * FROM unnest(" + ", ".join(f"%s::{_TYPES.get(c, 'text')}[]" for c in WRITTEN_COLUMNS) + ")")
REFUSALS_SQL = (  # params: hour, user, application, reason, count
    "INSERT INTO refusals_hourly AS r VALUES (%s, %s, %s, %s, %s) ON CONFLICT (hour, user_name, application, reason) "
    "DO UPDATE SET requests = r.requests + EXCLUDED.requests")


def append_staged_rows(conn: psycopg.Connection, staging_table: str) -> None:
    """Move rows COPY-ed into a staging table into the ledger, rollups kept in step (bulk loads)."""
    sql = APPEND_ROWS_SQL.format(columns=", ".join(LEDGER_COLUMNS),
                                 source=f"SELECT {', '.join(LEDGER_COLUMNS)} FROM {staging_table}")
    conn.execute(sql)


@contextmanager
def indexes_built_after(conn: psycopg.Connection, tables: tuple[str, ...]) -> Iterator[None]:
    """Drop the tables' keys and indexes; build them again, each sorted once, when the block ends.

    How a database restore loads empty tables: inserting millions of rows into a wide index row by
    row costs several times the rows themselves.
    """
    keys = conn.execute(
        "SELECT conrelid::regclass::text AS tab, conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
        "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('p', 'u')", [list(tables)]).fetchall()
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname <> ALL(%s)",
        [list(tables), [key["conname"] for key in keys]]).fetchall()
    for index in indexes:
        conn.execute(f'DROP INDEX "{index["indexname"]}"')
    for key in keys:
        conn.execute(f'ALTER TABLE {key["tab"]} DROP CONSTRAINT "{key["conname"]}"')
    yield
    for key in keys:
        conn.execute(f'ALTER TABLE {key["tab"]} ADD CONSTRAINT "{key["conname"]}" {key["definition"]}')
    for index in indexes:  # a partitioned table's definition says ON ONLY (the parent alone): build them all
        conn.execute(index["indexdef"].replace(" ON ONLY ", " ON ", 1))


def ledger_month_partition(month: datetime) -> str:
    """The name of the ledger's partition holding a calendar month (UTC): ``ledger_2026_10``."""
    return f"ledger_{month.astimezone(timezone.utc):%Y_%m}"


ENSURE_MONTH_SQL = "SELECT ledger_month_partition(%s)"  # params: a time in the month (migration 4's function)


def ensure_ledger_months(conn: psycopg.Connection, months: set[datetime]) -> None:
    """Make the ledger's partitions for the months of these times unless they exist.

    Writers call this before rows of a new month arrive, so the default partition stays empty; if it
    already holds rows of that month, the month stays there (still counted, not droppable at once).
    """
    for month in sorted(months):
        conn.execute(ENSURE_MONTH_SQL, (month,))


def drop_ledger_month(dsn: str, month: datetime) -> int:
    """Retention: drop a past month of raw ledger rows at once (its partition); the rollups keep its sums.
    Returns the rows dropped."""
    month = month_start(month.astimezone(timezone.utc))
    if month >= month_start():
        raise ValueError(f"{month:%Y-%m} is this month or later; only past months are dropped")
    name = ledger_month_partition(month)
    with connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass(%s) AS t", (name,)).fetchone()["t"]
        if exists is None:
            raise ValueError(f"the ledger has no partition for {month:%Y-%m}")
        rows = conn.execute(f'SELECT count(*) AS n FROM "{name}"').fetchone()["n"]
        conn.execute(f'ALTER TABLE ledger DETACH PARTITION "{name}"')
        conn.execute(f'DROP TABLE "{name}"')
    return rows
