"""Usage views computed where the data lives: PostgreSQL aggregates the gateway's rollups.

Every ledger row enters with the statement that adds it to its rollup rows (``store.APPEND_ROWS_SQL``:
the gateway's writes and bulk loads alike), so the rollups never drift from the ledger —
``rollup_equals_ledger`` proves it. There are three, with the same keys (user, team, application,
model, status) and sums (requests, prompt and completion tokens, cost):

- ``usage_hourly``: one row per hour and key — the time series (last 24 hours, last 30 days).
  A month of 19,000 employees (10 M requests) is about 4 M rows.
- ``usage_daily``: one row per day and key — what the portal's 30-day charts and tables read.
- ``usage_monthly``: one row per calendar month and key — breakdowns, top consumers, bills and
  caps, for a month or a year. The same month is about 80,000 rows.

Each view is one GROUP BY inside PostgreSQL; only its answer (a few dozen to a few thousand rows)
comes to pandas, in the shapes of ``helpers.usage``'s views of the raw ledger (same index, same
columns), so the plots, ``usage.bill`` and ``usage.cap_savings`` take either.

    >>> from helpers import rollups
    >>> rollups.usage_by(dsn, "team")                     # this month, per team
    >>> rollups.tokens_per_day(dsn, 30, by="model")       # the last 30 days
    >>> rollups.chargeback(dsn, by="team", months=12)     # a year's bill, priced with catalog/prices.yaml
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pandas as pd
import psycopg
from psycopg import sql

from . import footprint, usage
from .gateway.migrations import ROLLUP_KEYS, ROLLUPS
from .prices import Price

UNITS = {"hour": "usage_hourly", "day": "usage_hourly", "month": "usage_monthly"}  # period -> the rollup to read
SUMS = sql.SQL("sum(requests)::bigint AS requests, sum(prompt_tokens)::bigint AS prompt_tokens, "
               "sum(completion_tokens)::bigint AS completion_tokens, "
               "sum(prompt_tokens + completion_tokens)::bigint AS tokens, sum(cost_usd) AS cost_usd")
# The last `months` calendar months (None: all), up to `end` (a month start, excluded) or the latest month with
# usage. The bound is a scalar subquery, so PostgreSQL computes it first and reads only those months' rows.
STOP = sql.SQL("(SELECT coalesce(%(end)s::timestamptz, max(month) + interval '1 month') FROM usage_monthly)")
IN_MONTHS = sql.SQL("month < {stop} AND (%(months)s::integer IS NULL OR "
                    "month >= {stop} - %(months)s * interval '1 month')").format(stop=STOP)


def _connect(dsn: str) -> psycopg.Connection:
    """A session in UTC (days and months are UTC ones), without JIT (compiling costs more than these scans save)."""
    return psycopg.connect(dsn, options="-c TimeZone=UTC -c jit=off")


def _frame(conn: psycopg.Connection, query: sql.Composable, params: Mapping[str, object] | None = None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(query, params or None)
        return pd.DataFrame(cur.fetchall(), columns=[column.name for column in cur.description])


def _query(dsn: str, query: sql.Composable, params: Mapping[str, object] | None = None) -> pd.DataFrame:
    """A query's answer as a DataFrame."""
    with _connect(dsn) as conn:
        return _frame(conn, query, params)


def query(dsn: str, text: str) -> pd.DataFrame:
    """Any SQL of your own over the rollups (or the ledger), answered as a DataFrame."""
    return _query(dsn, sql.SQL(text))


def _keys(keys: tuple[str, ...]) -> sql.Composable:
    unknown = [key for key in keys if key not in ROLLUP_KEYS]
    if not keys or unknown:
        raise ValueError(f"group by any of {list(ROLLUP_KEYS)}, got {list(keys)}")
    return sql.SQL(", ").join(map(sql.Identifier, keys))


def usage_by(dsn: str, *keys: str, months: int | None = 1, end: datetime | None = None) -> pd.DataFrame:
    """Requests, tokens and cost per user, team, application, model or status (any combination), largest first,
    over the last ``months`` calendar months (None: all of them) — from the monthly rollups."""
    statement = sql.SQL("SELECT {keys}, {sums} FROM usage_monthly WHERE {window} GROUP BY {keys} "
                        "ORDER BY tokens DESC").format(keys=_keys(keys), sums=SUMS, window=IN_MONTHS)
    return _query(dsn, statement, {"months": months, "end": end}).set_index(list(keys))


def top_consumers(dsn: str, n: int = 10, months: int | None = 1, end: datetime | None = None) -> pd.DataFrame:
    """The n users with the most tokens, with their share of everyone's tokens (a window over the groups)."""
    statement = sql.SQL(
        "SELECT user_name, team, {sums}, sum(prompt_tokens + completion_tokens)::float8 / "
        "sum(sum(prompt_tokens + completion_tokens)) OVER () AS share_of_tokens FROM usage_monthly "
        "WHERE {window} GROUP BY user_name, team ORDER BY tokens DESC LIMIT %(n)s").format(sums=SUMS, window=IN_MONTHS)
    table = _query(dsn, statement, {"months": months, "end": end, "n": n})
    return table.astype({"share_of_tokens": float}).set_index(["user_name", "team"])


def user_tokens(dsn: str, months: int | None = 1, end: datetime | None = None) -> pd.Series:
    """Tokens per user, largest first: what a monthly cap is measured against (``usage.cap_savings``)."""
    return usage_by(dsn, "user_name", months=months, end=end)["tokens"]


def chargeback(dsn: str, prices: Mapping[str, Price] | None = None, by: str = "team", months: int | None = 1,
               end: datetime | None = None) -> pd.DataFrame:
    """The bill per team (or user, application...): PostgreSQL sums each model's prompt and completion
    tokens per team, pandas prices them with the one price table (``usage.bill``)."""
    return usage.bill(usage_by(dsn, by, "model", months=months, end=end), by, prices)


def tokens_per_period(dsn: str, unit: str, periods: int, by: str | None = None,
                      end: datetime | None = None) -> pd.DataFrame:
    """Tokens in each of the last ``periods`` hours, days or months (optionally one column per model, team...).

    The last period is the one holding the latest usage, unless ``end`` (excluded) says otherwise.
    Hours and days come from the hourly rollups, months from the monthly ones.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {list(UNITS)}, got {unit!r}")
    table = sql.Identifier(UNITS[unit])
    time = sql.Identifier("month" if unit == "month" else "hour")
    split = sql.SQL(", {}").format(_keys((by,))) if by else sql.SQL("")
    stop = sql.SQL("(SELECT coalesce(%(end)s::timestamptz, date_trunc(%(unit)s, max({time})) + %(step)s::interval) "
                   "FROM {table})").format(table=table, time=time)  # computed first: an index range, not a scan
    statement = sql.SQL(
        "SELECT date_trunc(%(unit)s, {time}) AS period{split}, "
        "sum(prompt_tokens + completion_tokens)::bigint AS tokens "
        "FROM {table} WHERE {time} >= {stop} - %(periods)s * %(step)s::interval AND {time} < {stop} "
        "GROUP BY period{split} ORDER BY period").format(table=table, time=time, split=split, stop=stop)
    answer = _query(dsn, statement, {"unit": unit, "step": f"1 {unit}", "periods": periods, "end": end})
    answer["period"] = pd.to_datetime(answer["period"], utc=True)
    if by:
        return answer.pivot(index="period", columns=by, values="tokens").fillna(0).astype("int64")
    return answer.set_index("period")


def tokens_per_hour(dsn: str, hours: int = 24, by: str | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Tokens per hour over the last ``hours`` hours (optionally split by a column)."""
    return tokens_per_period(dsn, "hour", hours, by, end)


def tokens_per_day(dsn: str, days: int = 30, by: str | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Tokens per day over the last ``days`` days (optionally split by a column)."""
    return tokens_per_period(dsn, "day", days, by, end)


def tokens_per_month(dsn: str, months: int = 12, by: str | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Tokens per calendar month over the last ``months`` months (optionally split by a column)."""
    return tokens_per_period(dsn, "month", months, by, end)


def views(dsn: str, prices: Mapping[str, Price] | None = None,
          months: int | None = 1) -> dict[str, pd.DataFrame | float]:
    """Every table of Lab 6 (the keys of ``usage.analyse``) for the last ``months`` months, computed in PostgreSQL;
    plus tokens per month by model."""
    per_user = usage_by(dsn, "user_name", "team", months=months)
    total = max(1, per_user["tokens"].sum())
    top_users = per_user.head(10).assign(share_of_tokens=lambda table: table["tokens"] / total)
    return {
        "per_hour_24h_by_model": tokens_per_hour(dsn, 24, by="model"),
        "per_day_30d_by_model": tokens_per_day(dsn, 30, by="model"),
        "per_month_by_model": tokens_per_month(dsn, months or 12, by="model"),
        "by_team": usage_by(dsn, "team", months=months),
        "by_application_model": usage_by(dsn, "application", "model", months=months),
        "by_status": usage_by(dsn, "status", months=months),
        "top_users": top_users,
        "user_tokens": per_user["tokens"].droplevel("team"),
        "chargeback_by_team": chargeback(dsn, prices, "team", months=months),
        "rows": float(per_user["requests"].sum()),
        "users": float(len(per_user)),
        "top_1pct_users_token_share": float(per_user["tokens"].head(max(1, len(per_user) // 100)).sum() / total),
    }


SLA_SQL = sql.SQL("""
WITH served AS (
    SELECT date_trunc('hour', ts) AS hour, model, status, ttft_ms IS NOT NULL AS streamed,
           coalesce(ttft_ms, latency_ms) AS first_token_ms,
           CASE WHEN ttft_ms IS NOT NULL AND completion_tokens > 1
                THEN (latency_ms - ttft_ms) / (completion_tokens - 1) END AS tpot_ms
    FROM ledger
    WHERE status <> 'client_disconnected'
      AND ts >= (SELECT date_trunc('hour', max(ts)) FROM ledger) - (%(hours)s - 1) * interval '1 hour'
)
SELECT hour, model, count(*)::bigint AS requests,
       count(*) FILTER (WHERE status = 'success' AND first_token_ms <= %(ttft_ms)s
                        AND coalesce(tpot_ms, 0) <= %(tpot_ms)s)::bigint AS within_sla,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY first_token_ms) AS ttft_p95_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY tpot_ms) AS tpot_p95_ms,
       count(*) FILTER (WHERE streamed)::bigint AS streamed
FROM served GROUP BY hour, model ORDER BY hour, model""")


def sla_compliance(dsn: str, ttft_p95_ms: float, tpot_p95_ms: float, hours: int = 24) -> pd.DataFrame:
    """SLA compliance per model and hour over the last ``hours`` hours of the ledger, computed in PostgreSQL.

    A request is within the SLA when it succeeded, its first token came within ``ttft_p95_ms`` and, streamed,
    each further token within ``tpot_p95_ms`` on average. Time to first token is the ledger's ``ttft_ms``
    (streamed requests); a request that was not streamed shows its first token with the whole answer, so its
    ``latency_ms`` counts. An hour meets the SLO (p95 limits, Lab 1's) when at least 95 % of its requests
    are within the SLA. Hang-ups (``client_disconnected``) are the client's choice and are left out; failures
    count against the SLA. The rollups hold no latencies: this reads the ledger (an index range on ``ts``).
    """
    if ttft_p95_ms <= 0 or tpot_p95_ms <= 0 or hours <= 0:
        raise ValueError(f"SLA limits and hours must be positive, got {ttft_p95_ms}, {tpot_p95_ms}, {hours}")
    table = _query(dsn, SLA_SQL, {"hours": hours, "ttft_ms": ttft_p95_ms, "tpot_ms": tpot_p95_ms})
    table["hour"] = pd.to_datetime(table["hour"], utc=True)
    table = table.astype({"ttft_p95_ms": float, "tpot_p95_ms": float})
    table["compliance"] = table["within_sla"] / table["requests"]
    table["meets_slo"] = table["compliance"] >= 0.95
    return table.set_index(["hour", "model"])


def same_counts(one: pd.DataFrame | pd.Series, other: pd.DataFrame | pd.Series) -> bool:
    """Two tables of counts (tokens per hour and model...) hold the same numbers in the same cells: dtypes,
    column order and cells that are zero aside. For comparing a view of the rollups with pandas' view of the rows."""
    def cells(table: pd.DataFrame | pd.Series) -> dict:
        stacked = table.stack() if isinstance(table, pd.DataFrame) else table
        return {tuple(map(str, key)) if isinstance(key, tuple) else str(key): int(value)
                for key, value in stacked.items() if value}
    return cells(one) == cells(other)


def views_in_fresh_process(dsn: str, prices: Mapping[str, Price] | None = None,
                           months: int | None = 1) -> tuple[dict, dict]:
    """``views`` in a new process, measured like ``usage.analyse_in_fresh_process`` (rows: the requests summarised)."""
    tables, measured = footprint.in_fresh_process(views, dsn, prices, months)
    return tables, {"rows": int(tables["rows"]), **measured}


def rollup_rows(dsn: str) -> dict[str, int]:
    """How many rows each rollup holds (what PostgreSQL reads for a view over everything): hourly, daily, monthly."""
    answer = _query(dsn, sql.SQL("SELECT (SELECT count(*) FROM usage_hourly) AS hourly, "
                                 "(SELECT count(*) FROM usage_daily) AS daily, "
                                 "(SELECT count(*) FROM usage_monthly) AS monthly"))
    return {name: int(value) for name, value in answer.iloc[0].items()}


TOTALS = ("requests", "prompt_tokens", "completion_tokens", "cost_usd")


def _compare(conn: psycopg.Connection, table: str, period: str) -> dict:
    """One rollup against the ledger grouped the same way, FULL JOINed group by group."""
    keys = sql.SQL(", ").join(map(sql.Identifier, ROLLUP_KEYS))
    on = sql.SQL(" AND ").join(sql.SQL("r.{k} = u.{k}").format(k=sql.Identifier(k)) for k in (period, *ROLLUP_KEYS))
    differs = sql.SQL(
        "r.{p} IS NULL OR u.{p} IS NULL OR r.requests <> u.requests OR r.prompt_tokens <> u.prompt_tokens "
        "OR r.completion_tokens <> u.completion_tokens "
        "OR abs(r.cost_usd - u.cost_usd) > 1e-9 * greatest(1, abs(r.cost_usd))").format(p=sql.Identifier(period))
    totals = sql.SQL(", ").join(
        sql.SQL("coalesce(sum({side}.{t}), 0) AS {name}").format(side=sql.Identifier(side), t=sql.Identifier(t),
                                                                 name=sql.Identifier(f"{side}_{t}"))
        for side in ("r", "u") for t in TOTALS)
    statement = sql.SQL(
        "WITH r AS (SELECT date_trunc(%(period)s, ts) AS {p}, {keys}, count(*) AS requests, "
        "sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd "
        "FROM ledger GROUP BY 1, {keys}) "
        "SELECT count(*) AS groups, count(*) FILTER (WHERE {differs}) AS mismatches, {totals} "
        "FROM r FULL JOIN (SELECT * FROM {table} WHERE {p} >= "
        "(SELECT date_trunc('month', min(ts), 'UTC') FROM ledger)) u ON {on}").format(p=sql.Identifier(period), keys=keys, differs=differs,
                                                     totals=totals, table=sql.Identifier(table), on=on)
    row = _frame(conn, statement, {"period": period}).iloc[0]
    side = {label: {t: float(row[f"{s}_{t}"]) if t == "cost_usd" else int(row[f"{s}_{t}"]) for t in TOTALS}
            for s, label in (("r", "ledger"), ("u", "rollup"))}
    return {"groups": int(row["groups"]), "mismatches": int(row["mismatches"]), **side}


ROLLUP_NAMES = {"hour": "hourly", "day": "daily", "month": "monthly"}  # period -> its key in the check's answer


def rollup_equals_ledger(dsn: str) -> dict:
    """Compare every rollup (hourly, daily, monthly) with the raw ledger, group by group (period, user, team,
    application, model, status), from the ledger's first month on (months dropped for retention live on in the
    rollups only).

    The ledger is grouped as each rollup is and the two are FULL JOINed: a group missing on either
    side, or with another count of requests or tokens (to the token) or cost (beyond rounding), is a
    mismatch. Returns the mismatches in all, the ledger's totals, and per rollup (``hourly``, ``daily``,
    ``monthly``) its groups, mismatches and totals.
    """
    with _connect(dsn) as conn:  # every comparison sees the same snapshot, whatever the gateway writes meanwhile
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        checks = {ROLLUP_NAMES[period]: _compare(conn, table, period) for period, table in ROLLUPS.items()}
    ledger = checks["hourly"]["ledger"]  # the same snapshot of the ledger, grouped three ways
    for check in checks.values():
        del check["ledger"]
    return {"mismatches": sum(check["mismatches"] for check in checks.values()), "ledger": ledger, **checks}
