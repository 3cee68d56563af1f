"""Usage analysis and chargeback from the gateway's ledger, with pandas: the naive way.

The same functions analyse the live ledger of Lab 5 and a synthetic month of a
19,000-employee company: both are DataFrames with the ledger's columns, every row
read into memory. ``helpers.rollups`` computes the same views inside PostgreSQL from
the rollups, in a fraction of the time and memory; the pricing (``bill``) and the
cap arithmetic (``cap_savings``) here serve both.
"""
from __future__ import annotations

import io
import time
from datetime import datetime
from collections.abc import Mapping

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg.copy import QueuedLibpqWriter
from psycopg.rows import dict_row

from . import footprint
from .gateway import store
from .gateway.migrations import ROLLUPS, ROLLUPS_FROM_LEDGER
from .gateway.portal_data import Database, connected
from .gateway.store import LEDGER_COLUMNS
from .prices import Price, price_of

CATEGORIES = ("user_name", "team", "application", "model", "status")
CSV_OPTIONS = "FORMAT csv, HEADER true"
ROLLED_UP_TABLES = ("ledger", *ROLLUPS.values())  # a load fills these
# Loads sort and hash millions of rows: memory for that, and no JIT (compiling costs more than it saves here).
BULK_SESSION = "-c work_mem=512MB -c maintenance_work_mem=1GB -c jit=off"


def as_ledger_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The ledger's columns and compact dtypes (categories for names, UTC timestamps)."""
    missing = [c for c in LEDGER_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"not a ledger: columns {missing} are missing")
    frame = frame[list(LEDGER_COLUMNS)].copy()
    for column in CATEGORIES:
        frame[column] = frame[column].astype("category")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["prompt_tokens"] = frame["prompt_tokens"].astype("int32")
    frame["completion_tokens"] = frame["completion_tokens"].astype("int32")
    frame["latency_ms"] = frame["latency_ms"].astype("float32")
    frame["tokens"] = frame["prompt_tokens"] + frame["completion_tokens"]
    return frame


def read_ledger(db: Database, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """The ledger (rows since a time, or all) as a DataFrame, streamed with COPY and parsed by pyarrow.

    ``db``: a DSN, or an open connection (``portal_data.snapshot``: read the same moment as other queries).
    """
    where = "WHERE ts >= %s" if since is not None else ""
    query = f"COPY (SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger {where}) TO STDOUT ({CSV_OPTIONS})"
    buffer = io.BytesIO()
    with connected(db) as conn, conn.cursor() as cur:
        with cur.copy(query, (since,) if since is not None else None) as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    options = pacsv.ConvertOptions(column_types={c: pa.dictionary(pa.int32(), pa.string()) for c in CATEGORIES})
    table = pacsv.read_csv(buffer, convert_options=options)  # names arrive as categories, never as Python strings
    del buffer
    return as_ledger_frame(table.to_pandas())


def _csv_bytes(frame: pd.DataFrame, header: bool) -> bytes:
    """CSV written by pyarrow (C++, several times faster than DataFrame.to_csv)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    plain = pa.schema([pa.field(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type)
                       for f in table.schema])
    buffer = io.BytesIO()
    pacsv.write_csv(table.cast(plain), buffer, pacsv.WriteOptions(include_header=header))
    return buffer.getvalue()


def copy_rows(cur: psycopg.Cursor, table: str, frame: pd.DataFrame, chunk_rows: int = 500_000) -> None:
    """COPY a DataFrame's rows into a table, its columns matched by name.

    One COPY statement, written a chunk at a time by a queued writer (a thread of its own sends the data):
    the next chunk's CSV is made while PostgreSQL parses the previous one.
    """
    statement = f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN ({CSV_OPTIONS})"
    with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        for start in range(0, len(frame), chunk_rows):
            copy.write(_csv_bytes(frame.iloc[start:start + chunk_rows], header=start == 0))


def months_of(frame: pd.DataFrame) -> set[datetime]:
    """The calendar months (their UTC starts) the rows' timestamps fall in."""
    if frame.empty:
        return set()
    first, last = frame["ts"].min().tz_convert("UTC"), frame["ts"].max().tz_convert("UTC")
    return set(pd.date_range(first.normalize().replace(day=1), last, freq="MS").to_pydatetime())


def write_ledger(dsn: str, frame: pd.DataFrame, chunk_rows: int = 500_000) -> int:
    """Append rows to the ledger, a chunk at a time, with their rollups, in one transaction.

    Each chunk is COPY-ed into a temporary staging table, then ``store.append_staged_rows`` moves
    it into the ledger and adds it to ``usage_hourly``, ``usage_daily`` and ``usage_monthly`` in one
    statement: the same SQL the gateway writes with, so the rollups stay in step. Rows whose ``request_id`` is
    already in the ledger are skipped (a second load of the same rows changes nothing). Returns the
    number of rows sent.
    """
    columns = list(LEDGER_COLUMNS)
    with store.connect(dsn) as conn:
        store.ensure_ledger_months(conn, months_of(frame))
    with psycopg.connect(dsn, options=BULK_SESSION) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE ledger_staging ON COMMIT DROP AS SELECT {', '.join(columns)} "
                    "FROM ledger WITH NO DATA")
        for start in range(0, len(frame), chunk_rows):
            copy_rows(cur, "ledger_staging", frame.iloc[start:start + chunk_rows][columns])
            store.append_staged_rows(conn, "ledger_staging")
            cur.execute("TRUNCATE ledger_staging")
    return len(frame)


def bulk_load(dsn: str, frame: pd.DataFrame, chunk_rows: int = 500_000) -> int:
    """Fill an empty ledger the way a database restore does, about twice as fast as ``write_ledger``.

    The rows are COPY-ed straight into the ledger, the rollups computed once from them, each from the next
    finer one (``migrations.roll_up``, the SQL the migrations backfill with), and the keys and indexes built
    afterwards. Later rows go through
    ``write_ledger`` (or the gateway) and add themselves to the rollups. Returns the rows loaded.
    """
    columns = list(LEDGER_COLUMNS)
    with store.connect(dsn) as conn:
        if conn.execute("SELECT EXISTS (SELECT FROM ledger) AS used").fetchone()["used"]:
            raise ValueError("bulk_load fills an empty ledger; append to one with write_ledger")
        store.ensure_ledger_months(conn, months_of(frame))
    with psycopg.connect(dsn, options=BULK_SESSION, row_factory=dict_row) as conn, conn.cursor() as cur:
        with store.indexes_built_after(conn, ROLLED_UP_TABLES):
            copy_rows(cur, "ledger", frame[columns], chunk_rows)
            for statement in ROLLUPS_FROM_LEDGER:
                cur.execute(statement)
    return len(frame)


def tokens_per_hour(frame: pd.DataFrame, hours: int = 24, by: str | None = None) -> pd.DataFrame:
    """Tokens in each hour of the last ``hours`` hours of the ledger (optionally split by a column)."""
    end = frame["ts"].max().ceil("h")
    recent = frame[frame["ts"] >= end - pd.Timedelta(hours=hours)]
    return _per_period(recent, "h", by)


def tokens_per_day(frame: pd.DataFrame, days: int = 30, by: str | None = None) -> pd.DataFrame:
    """Tokens per day over the last ``days`` days (optionally split by a column)."""
    end = frame["ts"].max().ceil("D")
    recent = frame[frame["ts"] >= end - pd.Timedelta(days=days)]
    return _per_period(recent, "D", by)


def _per_period(frame: pd.DataFrame, period: str, by: str | None) -> pd.DataFrame:
    keys = [frame["ts"].dt.floor(period).rename("period")]
    if by:
        keys.append(frame[by])
    table = frame.groupby(keys, observed=True)["tokens"].sum()
    return table.unstack(fill_value=0) if by else table.to_frame()


def usage_by(frame: pd.DataFrame, *keys: str) -> pd.DataFrame:
    """Requests, tokens and cost per user, application, model or team (any combination)."""
    table = frame.groupby(list(keys), observed=True).agg(
        requests=("tokens", "size"), prompt_tokens=("prompt_tokens", "sum"),
        completion_tokens=("completion_tokens", "sum"), tokens=("tokens", "sum"), cost_usd=("cost_usd", "sum"))
    return table.sort_values("tokens", ascending=False)


def top_consumers(frame: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The n users with the most tokens, with their share of the total."""
    table = usage_by(frame, "user_name", "team").head(n)
    table["share_of_tokens"] = table["tokens"] / frame["tokens"].sum()
    return table


def price_per_million_tokens(gpu_usd_per_hour: float, tokens_per_s: float, utilization: float = 0.5) -> float:
    """What a million tokens costs when a GPU at that hourly price produces tokens_per_s, busy ``utilization`` of the time.

    The derivation of catalog/prices.yaml's completion prices; the bill itself uses that table.
    """
    if gpu_usd_per_hour <= 0 or tokens_per_s <= 0 or not 0 < utilization <= 1:
        raise ValueError("need a positive GPU price, a positive throughput and a utilization in (0, 1]")
    return gpu_usd_per_hour / (tokens_per_s * 3600 * utilization) * 1e6


def chargeback(frame: pd.DataFrame, prices: Mapping[str, Price] | None = None, by: str = "team") -> pd.DataFrame:
    """The bill per team (or user, application...), largest first: each model's prompt and completion tokens
    at that model's two prices (the committed price table, catalog/prices.yaml, unless ``prices`` is given)."""
    return bill(usage_by(frame, by, "model"), by, prices)


def bill(per_model: pd.DataFrame, by: str, prices: Mapping[str, Price] | None = None) -> pd.DataFrame:
    """The bill per ``by`` from a usage table indexed by (``by``, model) — from the raw ledger or the rollups."""
    per_model = per_model.copy()
    models = per_model.index.get_level_values("model")
    per_model["usd"] = [price_of(str(model), prices).cost_usd(prompt, completion) for model, prompt, completion
                        in zip(models, per_model["prompt_tokens"], per_model["completion_tokens"])]
    table = per_model.groupby(level=by, observed=True)[
        ["requests", "prompt_tokens", "completion_tokens", "tokens", "usd"]].sum()
    table["share"] = table["usd"] / table["usd"].sum()
    return table.sort_values("usd", ascending=False)


def analyse(frame: pd.DataFrame, prices: Mapping[str, Price] | None = None) -> dict[str, pd.DataFrame | float]:
    """Every table of Lab 6 from one ledger: time series, breakdowns, top consumers, chargeback."""
    per_user = usage_by(frame, "user_name")
    top_share = per_user["tokens"].head(max(1, len(per_user) // 100)).sum() / max(1, per_user["tokens"].sum())
    return {
        "per_hour_24h_by_model": tokens_per_hour(frame, 24, by="model"),
        "per_day_30d_by_model": tokens_per_day(frame, 30, by="model"),
        "by_team": usage_by(frame, "team"),
        "by_application_model": usage_by(frame, "application", "model"),
        "by_status": usage_by(frame, "status"),
        "top_users": top_consumers(frame, 10),
        "user_tokens": per_user["tokens"],
        "chargeback_by_team": chargeback(frame, prices, "team"),
        "rows": float(len(frame)),
        "users": float(len(per_user)),
        "top_1pct_users_token_share": float(top_share),
    }


def read_and_analyse(dsn: str, prices: Mapping[str, Price] | None = None,
                     since: pd.Timestamp | None = None) -> tuple[dict, dict]:
    """The naive way: read every row (since a time, or all) into pandas, then every table of Lab 6."""
    started = time.perf_counter()
    frame = read_ledger(dsn, since)
    read_seconds = time.perf_counter() - started
    return analyse(frame, prices), {"rows": len(frame), "read_seconds": read_seconds}


def analyse_in_fresh_process(dsn: str, prices: Mapping[str, Price] | None = None,
                             since: pd.Timestamp | None = None) -> tuple[dict, dict]:
    """Read and analyse a ledger in a new process: its time and peak memory are the analysis' own."""
    (tables, stats), measured = footprint.in_fresh_process(read_and_analyse, dsn, prices, since)
    return tables, {**stats, **measured}


def cap_savings(user_tokens: pd.Series, cap: float) -> dict[str, float]:
    """What a monthly per-user token cap would have changed: users capped, tokens not served."""
    over = user_tokens[user_tokens > cap]
    return {"cap_tokens": float(cap), "users_capped": float(len(over)),
            "share_of_users": len(over) / max(1, len(user_tokens)),
            "tokens_not_served": float((over - cap).sum()),
            "share_of_tokens": float((over - cap).sum() / max(1, user_tokens.sum()))}
