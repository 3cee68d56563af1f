"""The rollup views' plumbing without a database: bad input refused before connecting, the comparison of
tables of counts, the one statement rows enter the ledger with (and the one function that writes every rollup's
SQL), which rollup the portal reads, and measuring in a fresh process.
(The views themselves run against real PostgreSQL in tests/integration/test_rollups.py.)"""
from __future__ import annotations

import pandas as pd
import pytest

from datetime import datetime, timedelta, timezone


from helpers import footprint, rollups
from helpers.gateway import migrations, portal_data, store

NO_DATABASE = "host=127.0.0.1 port=1 dbname=none connect_timeout=1"


def test_only_the_rollup_keys_can_be_grouped_by():
    with pytest.raises(ValueError, match="group by any of"):
        rollups.usage_by(NO_DATABASE, "team; DROP TABLE ledger")
    with pytest.raises(ValueError, match="group by any of"):
        rollups.usage_by(NO_DATABASE)
    with pytest.raises(ValueError, match="unit must be one of"):
        rollups.tokens_per_period(NO_DATABASE, "week", 4)


def test_same_counts_ignores_dtypes_column_order_and_zero_cells():
    index = pd.to_datetime(["2026-10-01 09:00", "2026-10-01 10:00"], utc=True)
    one = pd.DataFrame({"a": [1, 0], "b": [2, 3]}, index=index)
    other = pd.DataFrame({"b": [2, 3], "a": [1, 0]}, index=index).astype("int32").iloc[:, ::-1]
    assert rollups.same_counts(one, other)
    assert not rollups.same_counts(one, one.assign(b=[2, 4]))
    assert rollups.same_counts(pd.Series({"ana": 5, "bo": 0}), pd.Series({"ana": 5}))


def test_rows_enter_the_ledger_with_every_rollup_in_one_statement():
    for statement in (store.BATCH_INSERT_SQL, store.APPEND_ROWS_SQL):
        assert statement.count("INSERT INTO") == 4 and statement.startswith("WITH new AS (INSERT INTO ledger")
        assert "ON CONFLICT (request_id, ts) DO NOTHING" in statement  # a request written twice counts once
        for period, table in migrations.ROLLUPS.items():
            assert migrations.roll_up(period, "new", accumulate=True) in statement
            assert f"INSERT INTO {table} AS u ({period}," in statement
            assert f"date_trunc('{period}', ts, 'UTC')" in statement


def test_one_function_writes_every_rollups_sql():
    live = migrations.roll_up("day", "new", accumulate=True)
    assert live.startswith("INSERT INTO usage_daily AS u (day, user_name, team, application, model, status, ")
    assert "count(*)" in live and "FROM new GROUP BY 1, 2, 3, 4, 5, 6 ON CONFLICT (day, user_name" in live
    assert "requests = u.requests + EXCLUDED.requests" in live and "cost_usd = u.cost_usd + EXCLUDED.cost_usd" in live
    backfill = migrations.roll_up("day", "usage_hourly", rolled_by="hour")
    assert "date_trunc('day', hour, 'UTC')" in backfill and "sum(requests)" in backfill and "count(*)" not in backfill
    assert "ON CONFLICT" not in backfill
    assert migrations.ROLLUPS_FROM_LEDGER == (  # each from the next finer one
        migrations.roll_up("hour", "ledger"), migrations.roll_up("day", "usage_hourly", rolled_by="hour"),
        migrations.roll_up("month", "usage_daily", rolled_by="day"))
    assert backfill in migrations.MIGRATIONS[5].sql and "CREATE TABLE usage_daily" in migrations.MIGRATIONS[5].sql


def test_the_portal_reads_the_daily_rollups_for_whole_days_only():
    midnight = datetime(2026, 10, 31, tzinfo=timezone.utc)
    assert portal_data.rollup_for(midnight - timedelta(days=30), midnight) == "day"
    assert portal_data.rollup_for(midnight - timedelta(days=1), midnight, unit="hour") == "hour"  # hours asked for
    assert portal_data.rollup_for(midnight - timedelta(days=1), midnight - timedelta(hours=6)) == "hour"
    paris = timezone(timedelta(hours=2))
    assert portal_data.rollup_for(datetime(2026, 10, 1, tzinfo=paris), midnight) == "hour"  # 22:00 UTC
    assert portal_data.rollup_for(datetime(2026, 10, 1, 2, tzinfo=paris), midnight) == "day"  # midnight UTC


def test_a_fresh_process_measures_its_own_time_and_memory():
    result, stats = footprint.in_fresh_process(sum, [1, 2, 3])
    assert result == 6
    assert stats["seconds"] >= 0 and 0.005 < stats["peak_memory_gb"] < 1
