"""The rollup views' plumbing without a database: bad input refused before connecting, the comparison of
tables of counts, the one statement rows enter the ledger with, and measuring in a fresh process.
(The views themselves run against real PostgreSQL in tests/integration/test_rollups.py.)"""
from __future__ import annotations

import pandas as pd
import pytest

from helpers import footprint, rollups
from helpers.gateway import store

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


def test_rows_enter_the_ledger_with_both_rollups_in_one_statement():
    for statement in (store.BATCH_INSERT_SQL, store.APPEND_ROWS_SQL):
        assert statement.count("INSERT INTO") == 3 and statement.startswith("WITH new AS (INSERT INTO ledger")
        assert "ON CONFLICT (request_id, ts) DO NOTHING" in statement  # a request written twice counts once
        assert "INSERT INTO usage_hourly" in statement and "INSERT INTO usage_monthly" in statement
        assert "date_trunc('hour', ts, 'UTC')" in statement and "date_trunc('month', ts, 'UTC')" in statement


def test_a_fresh_process_measures_its_own_time_and_memory():
    result, stats = footprint.in_fresh_process(sum, [1, 2, 3])
    assert result == 6
    assert stats["seconds"] >= 0 and 0.005 < stats["peak_memory_gb"] < 1
