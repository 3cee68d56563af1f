"""What the portal's pages show, read where it lives: the served models from the catalog and the price
table, usage from the rollups (never the raw ledger), users and plan requests from the key store.

Windows of whole days (UTC) read the daily rollups, others the hourly ones (``rollup_for``); the admin
page's users and top consumers read the monthly ones.

Needs only psycopg and yaml (it runs inside the gateway). Every window is given by its end (excluded):
the hour or day after the last one shown, so a page and Lab 6 asked for the same window give the same sums.

    >>> portal_data.usage_series(dsn, "hour", 24, user="ana")       # [{period, requests, tokens}] x 24
    >>> portal_data.usage_breakdown(dsn, since, end, user="ana")    # per application and model
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

from .. import prices
from . import migrations, store

ROOT = Path(__file__).resolve().parents[2]
STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
CSV_COLUMNS = ("period", "application", "model", "requests", "prompt_tokens", "completion_tokens", "cost_usd")


# --- the model catalog ------------------------------------------------------------------

@dataclass(frozen=True)
class ServedModel:
    """A model the gateway serves, as the catalog describes it and the price table prices it."""

    name: str
    description: str
    context_length: int | None
    quantization: str
    parameters_b: float | None
    tasks: tuple[str, ...]
    prompt_usd_per_million: float
    completion_usd_per_million: float


@lru_cache(maxsize=4)
def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def served_models(names: list[str], root: Path = ROOT) -> list[ServedModel]:
    """The served models (gateway names) with the catalog's description, context length and quantization and the
    price table's prices; a served name maps to the catalog through the price table's ``catalog:`` field."""
    table = _yaml(root / "catalog" / "prices.yaml").get("models") or {}
    catalog = {entry["name"]: entry for entry in _yaml(root / "catalog" / "validated_models.yaml").get("models") or []}
    served = []
    for name in sorted(names):
        entry = catalog.get((table.get(name) or {}).get("catalog", name), {})
        price = prices.price_of(name)
        served.append(ServedModel(
            name, entry.get("description") or "not in the catalog: ask the platform team what it is",
            entry.get("context_length"), entry.get("quantization", "unknown"), entry.get("parameters_b"),
            tuple(entry.get("tasks") or ()), price.prompt_usd_per_million, price.completion_usd_per_million))
    return served


# --- usage, from the daily or hourly rollups ---------------------------------------------

Database = str | psycopg.Connection  # a DSN, or a connection already open (a page's queries share one snapshot)


@contextmanager
def connected(db: Database) -> Iterator[psycopg.Connection]:
    """A connection in UTC: a new one for a DSN (closed after), else the one given."""
    if isinstance(db, psycopg.Connection):
        yield db
        return
    with store.connect(db) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


@contextmanager
def snapshot(dsn: str) -> Iterator[psycopg.Connection]:
    """One connection whose queries all see the same moment of the ledger (REPEATABLE READ, read only): a page's
    charts, totals and tables agree even while the gateway writes."""
    with store.connect(dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.autocommit = False
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            yield conn

def window_end(unit: str, now: datetime | None = None) -> datetime:
    """The end (excluded) of a window that includes the current hour or day (UTC)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    start = now.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        start = start.replace(hour=0)
    return start + STEPS[unit]


def _midnight(moment: datetime) -> bool:
    return moment.astimezone(timezone.utc).time() == time(0)


def rollup_for(start: datetime, end: datetime, unit: str = "day") -> str:
    """The period of the rollup to read for [start, end) per ``unit``: "day" (``usage_daily``) when the window is
    whole days (UTC) and no finer unit is asked for, else "hour" (``usage_hourly``: about 5 times the rows)."""
    return "day" if unit == "day" and _midnight(start) and _midnight(end) else "hour"


def _rollup(start: datetime, end: datetime, unit: str) -> dict[str, sql.Composable]:
    """For a query over [start, end) per ``unit``: the rollup table to read, its time column, and the unit each row
    falls in (the time itself when the rollup is per that unit: date_trunc with a time zone costs more than the sums)."""
    period = rollup_for(start, end, unit)
    time_column = sql.Identifier(period)
    in_unit = time_column if period == unit else sql.SQL("date_trunc({}, {}, 'UTC')").format(sql.Literal(unit),
                                                                                             time_column)
    return {"table": sql.Identifier(migrations.ROLLUPS[period]), "time": time_column, "in_unit": in_unit}


FILTERS = ("user_name", "application", "model")


def _where(filters: dict[str, str | None]) -> tuple[sql.Composable, dict[str, str]]:
    """`` AND column = value`` for each filter given (user_name, application, model), and its parameters."""
    given = {column: value for column, value in filters.items() if value is not None}
    unknown = sorted(set(given) - set(FILTERS))
    if unknown:
        raise ValueError(f"filter by any of {list(FILTERS)}, got {unknown}")
    clause = sql.SQL("").join(sql.SQL(" AND {} = {}").format(sql.Identifier(c), sql.Placeholder(f"f_{c}")) for c in given)
    return clause, {f"f_{c}": v for c, v in given.items()}


def usage_series(dsn: Database, unit: str, periods: int, user: str | None = None, end: datetime | None = None,
                 application: str | None = None, model: str | None = None) -> list[dict]:
    """Requests and tokens in each of the last ``periods`` hours or days before ``end`` (default: including the
    current one), every period present (zeros too); one user's or everyone's, one application's or model's."""
    if unit not in STEPS:
        raise ValueError(f"unit must be one of {list(STEPS)}, got {unit!r}")
    end = end or window_end(unit)
    step = STEPS[unit]
    start = end - periods * step
    where, params = _where({"user_name": user, "application": application, "model": model})
    query = sql.SQL(
        "WITH sums AS (SELECT {in_unit} AS period, sum(requests)::bigint AS requests, "
        "sum(prompt_tokens + completion_tokens)::bigint AS tokens FROM {table} "
        "WHERE {time} >= %(start)s AND {time} < %(end)s{where} GROUP BY period) "
        "SELECT s.period, coalesce(requests, 0) AS requests, coalesce(tokens, 0) AS tokens "
        "FROM generate_series(%(start)s, %(end)s - %(step)s, %(step)s) AS s(period) "
        "LEFT JOIN sums USING (period) ORDER BY 1").format(**_rollup(start, end, unit), where=where)
    params.update(start=start, end=end, step=step)
    with connected(dsn) as conn:
        return [{**row, "requests": int(row["requests"]), "tokens": int(row["tokens"])}
                for row in conn.execute(query, params)]


def usage_breakdown(dsn: Database, since: datetime, end: datetime, user: str | None = None) -> list[dict]:
    """Requests, prompt and completion tokens and cost per application and model in [since, end), largest first."""
    where, params = _where({"user_name": user})
    query = sql.SQL(
        "SELECT application, model, sum(requests)::bigint AS requests, sum(prompt_tokens)::bigint AS prompt_tokens, "
        "sum(completion_tokens)::bigint AS completion_tokens, sum(cost_usd) AS cost_usd FROM {table} "
        "WHERE {time} >= %(since)s AND {time} < %(end)s{where} GROUP BY 1, 2 "
        "ORDER BY sum(prompt_tokens + completion_tokens) DESC, 1, 2").format(**_rollup(since, end, "day"), where=where)
    with connected(dsn) as conn:
        return [store._plain(row) for row in conn.execute(query, {"since": since, "end": end, **params})]


def usage_csv(dsn: str, user: str | None, days: int = 30, end: datetime | None = None) -> str:
    """Per day, application and model over the last ``days`` days: what the usage page's export downloads."""
    end = end or window_end("day")
    since = end - timedelta(days=days)
    where, params = _where({"user_name": user})
    query = sql.SQL(
        "SELECT {in_unit} AS period, application, model, sum(requests)::bigint AS requests, "
        "sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens, "
        "sum(cost_usd) AS cost_usd FROM {table} WHERE {time} >= %(since)s AND {time} < %(end)s{where} "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").format(**_rollup(since, end, "day"), where=where)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    with connected(dsn) as conn:
        for row in conn.execute(query, {"since": since, "end": end, **params}):
            writer.writerow([row["period"].astimezone(timezone.utc).strftime("%Y-%m-%d"), _csv_text(row["application"]),
                             _csv_text(row["model"]), row["requests"], row["prompt_tokens"], row["completion_tokens"],
                             f"{row['cost_usd']:.9f}"])
    return out.getvalue()


def _csv_text(value: str) -> str:
    """A name as a spreadsheet shows it, never as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --- the admin view ----------------------------------------------------------------------

def top_consumers(dsn: str, limit: int = 10, month: datetime | None = None) -> list[dict]:
    """The users with the most tokens in a calendar month (this one by default), from the monthly rollups."""
    with store.connect(dsn) as conn:
        return [store._plain(row) for row in conn.execute(
            "SELECT user_name, team, sum(requests)::bigint AS requests, "
            "sum(prompt_tokens + completion_tokens)::bigint AS tokens, sum(cost_usd) AS cost_usd FROM usage_monthly "
            "WHERE month = %s GROUP BY 1, 2 ORDER BY tokens DESC, 1 LIMIT %s", (store.month_start(month), limit))]


def users(dsn: str, search: str = "", limit: int = 100, month: datetime | None = None) -> list[dict]:
    """Users whose name contains ``search`` (at most ``limit``, most tokens this month first): team, plan, cap,
    blocked, active applications, tokens and cost this month (monthly rollups)."""
    pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with store.connect(dsn) as conn:
        return [store._plain(row) for row in conn.execute(
            "SELECT u.name, u.team, u.plan, u.monthly_token_cap, u.blocked, "
            "(SELECT count(*) FROM applications a WHERE a.user_name = u.name AND a.revoked_at IS NULL) AS applications, "
            "coalesce(m.tokens, 0)::bigint AS tokens, coalesce(m.cost_usd, 0) AS cost_usd FROM users u "
            "LEFT JOIN (SELECT user_name, sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS cost_usd "
            "FROM usage_monthly WHERE month = %s GROUP BY 1) m ON m.user_name = u.name WHERE u.name LIKE %s "
            "ORDER BY tokens DESC, u.name LIMIT %s", (store.month_start(month), pattern, limit))]


def decline_plan_request(dsn: str, request_id: int) -> None:
    """An admin says no to a pending plan request."""
    with store.connect(dsn) as conn:
        row = conn.execute("UPDATE plan_requests SET decided_at = now(), decision = 'declined' "
                           "WHERE id = %s AND decided_at IS NULL RETURNING id", (request_id,)).fetchone()
    if row is None:
        raise store.StoreError(f"no pending plan request {request_id}")
