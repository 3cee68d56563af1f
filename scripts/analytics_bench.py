"""Usage analytics at company scale: a month and a year of 19,000 employees, measured in one run.

    .venv/bin/python scripts/analytics_bench.py       # about 30 minutes on 2 cores, ~20 GB of disk at the peak
    .venv/bin/python scripts/analytics_bench.py --employees 2000 --months 2 --skip-naive   # a quick try

(a) A month: the synthetic month (October 2026, at least 10 M requests) is loaded like a restore
    (``synthetic.load_into_postgres``: COPY, the rollups computed once, indexes built last); then the rollups are checked against the ledger, the naive way
    (every row into pandas) is measured, and Lab 6's views are computed from the rollups.
(b) A year: twelve months, each drawn by the same generator (its own seed and calendar), rolled up in
    pandas to hourly and monthly rows and COPY-ed into the rollup tables of a second database. Its raw
    rows are not stored (a year's ledger would be ~20 GB); the rollups are what the views read. Then the
    30-day views (24 h, 30 days by day, the last month's breakdowns and bill) and the 12-month views
    (tokens per month, the year's breakdowns, top consumers and bill) are computed from them.

Every view set runs in a fresh process: its seconds and peak memory (MB) are the analysing Python
process's own. Targets: the month's views at most 5 s and 1 GB; the year's 30-day and 12-month views
at most 10 s each. PASS or MISS is printed beside each figure. The two databases are dropped at the end
(unless --keep), and PostgreSQL is stopped if this script started it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import footprint, rollups, synthetic, usage  # noqa: E402
from helpers.gateway import migrations, postgres, store  # noqa: E402

MONTH_DB, YEAR_DB = "analytics_bench_month", "analytics_bench_year"
MONTH_TARGET_S, MONTH_TARGET_MB, YEAR_TARGET_S = 5.0, 1000.0, 10.0
KEYS = list(migrations.ROLLUP_KEYS)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def measured(label: str, tables_stats: tuple[dict, dict], target_s: float, target_mb: float | None = None) -> dict:
    """Print one view set's figures against its targets."""
    _, stats = tables_stats
    mb = stats["peak_memory_gb"] * 1000
    ok = stats["seconds"] <= target_s and (target_mb is None or mb <= target_mb)
    limit = f"<= {target_s:.0f} s" + (f", <= {target_mb:,.0f} MB" if target_mb else "")
    print(f"  {label:42} {stats['rows']:>13,} requests  {stats['seconds']:6.2f} s  {mb:7,.0f} MB peak   "
          f"target {limit}: {verdict(ok)}", flush=True)
    return {**stats, "ok": ok}


def month(profile: synthetic.CompanyProfile, naive: bool) -> dict:
    print(f"(a) one month: {profile.employees:,} employees, October 2026", flush=True)
    started = time.perf_counter()
    rows = synthetic.synthetic_month(profile)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    dsn = synthetic.load_into_postgres(rows, MONTH_DB)
    print(f"  {len(rows):,} requests generated in {generated:.0f} s, loaded (COPY, rollups, indexes) in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    del rows
    counts = rollups.rollup_rows(dsn)
    print(f"  rollups: {counts['hourly']:,} hourly rows, {counts['monthly']:,} monthly rows", flush=True)
    started = time.perf_counter()
    check = rollups.rollup_equals_ledger(dsn)
    print(f"  rollups = ledger: {check['mismatches']} mismatches over {check['hourly']['groups']:,} hourly and "
          f"{check['monthly']['groups']:,} monthly groups; {check['ledger']['requests']:,} requests, "
          f"{check['ledger']['prompt_tokens'] + check['ledger']['completion_tokens']:,} tokens on both sides "
          f"(checked in {time.perf_counter() - started:.0f} s)", flush=True)
    result = {"dsn": dsn, "mismatches": check["mismatches"]}
    if naive:
        _, stats = usage.analyse_in_fresh_process(dsn)
        print(f"  {'naive: every row into pandas, then the views':42} {stats['rows']:>13,} rows      "
              f"{stats['seconds']:6.2f} s  {stats['peak_memory_gb'] * 1000:7,.0f} MB peak", flush=True)
        result["naive"] = stats
    result["views"] = measured("the month's views from the rollups", rollups.views_in_fresh_process(dsn),
                               MONTH_TARGET_S, MONTH_TARGET_MB)
    if naive:
        print(f"  the rollups answer {result['naive']['seconds'] / result['views']['seconds']:.0f}x faster with "
              f"{result['naive']['peak_memory_gb'] / result['views']['peak_memory_gb']:.0f}x less memory", flush=True)
    return result


def rolled_up(rows: pd.DataFrame, month_start: pd.Timestamp | None = None) -> pd.DataFrame:
    """One month's raw rows as rollup rows, what the gateway's statement would have summed: per hour and key,
    or (given the month's start) per month and key."""
    keys = [rows[key] for key in KEYS]
    if month_start is None:
        keys.insert(0, rows["ts"].dt.floor("h").rename("hour"))
    table = rows.groupby(keys, observed=True).agg(
        requests=("ts", "size"), prompt_tokens=("prompt_tokens", "sum"),
        completion_tokens=("completion_tokens", "sum"), cost_usd=("cost_usd", "sum")).reset_index()
    if month_start is not None:
        table.insert(0, "month", month_start)
    return table


def copy_table(dsn: str, table: str, frame: pd.DataFrame) -> None:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        usage.copy_rows(cur, table, frame)


def year(profile: synthetic.CompanyProfile, months: int) -> dict:
    first = pd.Timestamp("2026-10-01", tz="UTC") - pd.DateOffset(months=months - 1)  # the year ends with October 2026
    print(f"(b) a year: {months} calendar months from {first:%Y-%m} of {profile.employees:,} employees, each drawn "
          "by the generator (own seed), rolled up in pandas and COPY-ed into the rollup tables (raw rows not "
          "stored)", flush=True)
    postgres.drop_database(YEAR_DB)
    dsn = postgres.create_database(YEAR_DB)
    store.init_schema(dsn)
    with store.connect(dsn) as conn:
        for table in ("usage_hourly", "usage_monthly"):
            conn.execute(f"ALTER TABLE {table} SET UNLOGGED")  # a benchmark's data set: no WAL for 50 M rows
    started, requests = time.perf_counter(), 0
    for k in range(months):
        start = first + pd.DateOffset(months=k)
        end = start + pd.DateOffset(months=1)
        rows = synthetic.synthetic_month(profile, days=(end - start).days, end=end, seed=100 + k)
        requests += len(rows)
        copy_table(dsn, "usage_hourly", rolled_up(rows))
        copy_table(dsn, "usage_monthly", rolled_up(rows, start))
        print(f"  {start:%Y-%m}: {len(rows):,} requests ({time.perf_counter() - started:.0f} s so far)", flush=True)
        del rows
    with store.connect(dsn) as conn:
        for table in ("usage_hourly", "usage_monthly"):
            conn.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
    counts = rollups.rollup_rows(dsn)
    print(f"  {requests:,} requests summarised in {counts['hourly']:,} hourly and {counts['monthly']:,} monthly "
          f"rollup rows, made in {time.perf_counter() - started:.0f} s", flush=True)
    thirty = measured("30-day views (24 h, 30 days, last month)", rollups.views_in_fresh_process(dsn, months=1),
                      YEAR_TARGET_S)
    twelve = measured(f"{months}-month views", rollups.views_in_fresh_process(dsn, months=months), YEAR_TARGET_S)
    return {"requests": requests, "thirty": thirty, "twelve": twelve}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--employees", type=int, default=19_000)
    parser.add_argument("--months", type=int, default=12, help="months in the year (b)")
    parser.add_argument("--skip-naive", action="store_true", help="do not measure the naive read of every row")
    parser.add_argument("--skip-year", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the two databases")
    args = parser.parse_args()
    profile = synthetic.CompanyProfile(employees=args.employees)
    started_postgres = postgres.running_postgres() is None
    postgres.start_postgres()
    print(f"analysing process before any work: {footprint.peak_memory_gb() * 1000:.0f} MB (this script; the views "
          "run in fresh processes)", flush=True)
    try:
        a = month(profile, naive=not args.skip_naive)
        b = None if args.skip_year else year(profile, args.months)
    finally:
        if not args.keep:
            postgres.drop_database(MONTH_DB)
            postgres.drop_database(YEAR_DB)
        if started_postgres:
            postgres.stop_postgres()
    print("summary:", flush=True)
    print(f"  month: {a['views']['rows']:,} requests (>= 10 M: {verdict(a['views']['rows'] >= 10_000_000)}), "
          f"views {a['views']['seconds']:.2f} s, {a['views']['peak_memory_gb'] * 1000:,.0f} MB: "
          f"{verdict(a['views']['ok'])}; rollups = ledger: {verdict(a['mismatches'] == 0)}")
    if b:
        print(f"  year: {b['requests']:,} requests (>= 100 M: {verdict(b['requests'] >= 100_000_000)}), 30-day views "
              f"{b['thirty']['seconds']:.2f} s: {verdict(b['thirty']['ok'])}, {args.months}-month views "
              f"{b['twelve']['seconds']:.2f} s: {verdict(b['twelve']['ok'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
