# The gateway key store exactly as commit 0478c47 shipped it: the migration test makes an old ledger with it.
"""The gateway's own tables: plans, users, applications (keys) and the usage ledger.

Keys are shown once, when an application is created, and stored only as their
SHA-256 (they are long random strings, so a plain hash is the right tool).
This module needs only psycopg: the LiteLLM plugin (its own venv) and the
notebooks (the workshop venv) share it.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg
from psycopg.rows import dict_row

KEY_PREFIX = "sk-maas-"
DSN_ENV = "MAAS_GATEWAY_DSN"  # how the plugin inside LiteLLM finds the database

SCHEMA = """
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
    monthly_token_cap bigint CHECK (monthly_token_cap >= 0),  -- NULL: no cap
    portal_token_hash text UNIQUE  -- the user's login to the self-service portal
);
CREATE TABLE IF NOT EXISTS applications (
    id         bigserial PRIMARY KEY,
    user_name  text NOT NULL REFERENCES users (name),
    name       text NOT NULL,
    key_hash   text NOT NULL UNIQUE,
    key_hint   text NOT NULL,  -- the first characters, to recognise a key in a list
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
    status            text NOT NULL,  -- success, failure, refused, rate_limited
    cost_usd          double precision NOT NULL,
    request_id        text
);
ALTER TABLE users ADD COLUMN IF NOT EXISTS portal_token_hash text UNIQUE;  -- ledgers made before the portal
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger (ts);
CREATE INDEX IF NOT EXISTS ledger_user_ts ON ledger (user_name, ts);
"""

LEDGER_COLUMNS = ("ts", "user_name", "team", "application", "model", "prompt_tokens",
                  "completion_tokens", "latency_ms", "status", "cost_usd", "request_id")

DEFAULT_PLANS = {  # name: (requests/min, tokens/min, monthly budget in USD)
    "trial": (30, 20_000, 0.05),
    "standard": (600, 200_000, 5.00),
    "unlimited": (100_000, 100_000_000, 1_000_000.0),
}


class StoreError(ValueError):
    """Bad input for the key store: the message says what to do instead."""


@dataclass(frozen=True)
class Application:
    """An application as its owner sees it; the key itself only once, at creation."""

    id: int
    user: str
    name: str
    models: list[str]
    plan: str
    key_hint: str
    created_at: datetime
    revoked_at: datetime | None
    key: str | None = None  # set only in the answer to create_application

    def __repr__(self) -> str:  # a key never lands in a notebook output by accident
        shown = "'sk-maas-…(shown once)'" if self.key else None
        return (f"Application(id={self.id}, user={self.user!r}, name={self.name!r}, models={self.models}, "
                f"plan={self.plan!r}, key_hint={self.key_hint!r}, key={shown})")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


def init_schema(dsn: str, plans: dict[str, tuple[int, int, float]] = DEFAULT_PLANS) -> None:
    """Create the tables (idempotent) and the default plans if missing."""
    with connect(dsn) as conn:
        conn.execute(SCHEMA)
        for name, (rpm, tpm, budget) in plans.items():
            conn.execute("INSERT INTO plans VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                         (name, rpm, tpm, budget))


def ensure_user(dsn: str, user: str, team: str = "unassigned") -> None:
    """Register a user (idempotent; an existing user keeps its team)."""
    if not user or not user.strip():
        raise StoreError("a user name is required")
    with connect(dsn) as conn:
        conn.execute("INSERT INTO users (name, team) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (user, team))


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


def _plan_names(conn: psycopg.Connection) -> list[str]:
    return [row["name"] for row in conn.execute("SELECT name FROM plans ORDER BY name")]


def create_application(dsn: str, user: str, name: str, models: list[str], plan: str = "standard",
                       known_models: list[str] | None = None) -> Application:
    """A new application with a fresh key for the given models and plan. The key is shown once."""
    if not models:
        raise StoreError("an application needs at least one model")
    unknown = sorted(set(models) - set(known_models)) if known_models is not None else []
    if unknown:
        raise StoreError(f"unknown model(s) {unknown}; the gateway serves {sorted(known_models)}")
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    with connect(dsn) as conn:
        if plan not in _plan_names(conn):
            raise StoreError(f"unknown plan {plan!r}; plans: {_plan_names(conn)}")
        if not conn.execute("SELECT 1 FROM users WHERE name = %s", (user,)).fetchone():
            raise StoreError(f"unknown user {user!r}; register it first (ensure_user)")
        try:
            row = conn.execute(
                "INSERT INTO applications (user_name, name, key_hash, key_hint, models, plan) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                (user, name, hash_key(key), key[:len(KEY_PREFIX) + 4], list(models), plan)).fetchone()
        except psycopg.errors.UniqueViolation:
            raise StoreError(f"{user!r} already has an application named {name!r}; "
                             "pick another name or revoke the old key first") from None
    return _application(row, key)


def _application(row: dict, key: str | None = None) -> Application:
    return Application(row["id"], row["user_name"], row["name"], list(row["models"]), row["plan"],
                       row["key_hint"], row["created_at"], row["revoked_at"], key)


def list_applications(dsn: str, user: str) -> list[Application]:
    """A user's applications, newest first (keys are never shown again)."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT * FROM applications WHERE user_name = %s ORDER BY id DESC", (user,))
        return [_application(row) for row in rows]


def revoke_application(dsn: str, user: str, name: str) -> None:
    """Revoke an application's key at once; its usage stays in the ledger."""
    with connect(dsn) as conn:
        row = conn.execute("UPDATE applications SET revoked_at = now() WHERE user_name = %s AND name = %s "
                           "AND revoked_at IS NULL RETURNING id", (user, name)).fetchone()
    if row is None:
        raise StoreError(f"{user!r} has no active application named {name!r}")


def rename_application(dsn: str, user: str, name: str, new_name: str) -> None:
    """Free a name, e.g. to create a new key for the same application after a revoke."""
    with connect(dsn) as conn:
        conn.execute("UPDATE applications SET name = %s WHERE user_name = %s AND name = %s",
                     (new_name, user, name))


def lookup_key(conn: psycopg.Connection, key: str) -> dict | None:
    """Everything the gateway needs to admit a request made with this key, or None."""
    return conn.execute(
        "SELECT a.id, a.user_name, a.name AS application, a.models, a.revoked_at, u.team, u.blocked, "
        "u.monthly_token_cap, p.name AS plan, p.rpm, p.tpm, p.monthly_budget_usd "
        "FROM applications a JOIN users u ON u.name = a.user_name JOIN plans p ON p.name = a.plan "
        "WHERE a.key_hash = %s", (hash_key(key),)).fetchone()


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend(conn: psycopg.Connection, user: str, application: str) -> float:
    row = conn.execute("SELECT coalesce(sum(cost_usd), 0) AS spend FROM ledger WHERE user_name = %s "
                       "AND application = %s AND ts >= %s", (user, application, month_start())).fetchone()
    return float(row["spend"])


def month_tokens(conn: psycopg.Connection, user: str) -> int:
    row = conn.execute("SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens FROM ledger "
                       "WHERE user_name = %s AND ts >= %s", (user, month_start())).fetchone()
    return int(row["tokens"])


def insert_ledger_rows(conn: psycopg.Connection, rows: list[tuple]) -> None:
    """Rows in LEDGER_COLUMNS order."""
    placeholders = ", ".join(["%s"] * len(LEDGER_COLUMNS))
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS)}) VALUES ({placeholders})", rows)


# --- admin -----------------------------------------------------------------------------

def set_plan(dsn: str, name: str, rpm: int, tpm: int, monthly_budget_usd: float) -> None:
    """Create or change a plan; every application on it follows at its next request."""
    with connect(dsn) as conn:
        conn.execute("INSERT INTO plans VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                     "rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm, monthly_budget_usd = EXCLUDED.monthly_budget_usd",
                     (name, rpm, tpm, monthly_budget_usd))


def move_application(dsn: str, user: str, name: str, plan: str) -> None:
    """Put an application on another plan."""
    with connect(dsn) as conn:
        if plan not in _plan_names(conn):
            raise StoreError(f"unknown plan {plan!r}; plans: {_plan_names(conn)}")
        conn.execute("UPDATE applications SET plan = %s WHERE user_name = %s AND name = %s", (plan, user, name))


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


def usage_summary(dsn: str, user: str | None = None, since: datetime | None = None) -> list[dict]:
    """Requests, tokens and cost per user, application and model (one user, or everyone)."""
    since = since or month_start()
    query = ("SELECT user_name, application, model, count(*) AS requests, "
             "sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, "
             "sum(cost_usd) AS cost_usd FROM ledger WHERE ts >= %s AND (%s::text IS NULL OR user_name = %s) "
             "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    with connect(dsn) as conn:
        return list(conn.execute(query, (since, user, user)))


def top_consumers(dsn: str, limit: int = 10, since: datetime | None = None) -> list[dict]:
    """The users with the most tokens since a time (this month by default)."""
    with connect(dsn) as conn:
        return list(conn.execute(
            "SELECT user_name, team, count(*) AS requests, sum(prompt_tokens + completion_tokens) AS tokens, "
            "sum(cost_usd) AS cost_usd FROM ledger WHERE ts >= %s GROUP BY 1, 2 ORDER BY tokens DESC LIMIT %s",
            (since or month_start(), limit)))
