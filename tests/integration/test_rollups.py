"""The hourly, daily and monthly rollups against the raw ledger, in real PostgreSQL.

A small synthetic week is bulk-loaded (usage.bulk_load) with a tenth of its rows held back; PostgreSQL
restarts; the held-back rows arrive late (old timestamps, hours already rolled up); then the whole
week is loaded again (same request ids: nothing may double). After every step the rollups equal the
ledger to the token, and the views computed from them equal pandas' views of the raw rows.
"""
from __future__ import annotations

import pandas as pd
import pytest

from helpers import rollups, synthetic, usage
from helpers.gateway import postgres, store

pytestmark = pytest.mark.integration
DATABASE = "rollups_test"


@pytest.fixture(scope="module")
def week() -> pd.DataFrame:
    rows = synthetic.synthetic_month(synthetic.CompanyProfile(employees=300, teams=5), days=7, seed=11)
    rows["request_id"] = [f"synthetic-{i}" for i in range(len(rows))]  # what makes a second load idempotent
    return rows


def totals(rows: pd.DataFrame) -> dict:
    return {"requests": len(rows), "prompt_tokens": int(rows["prompt_tokens"].sum()),
            "completion_tokens": int(rows["completion_tokens"].sum()), "cost_usd": float(rows["cost_usd"].sum())}


def same(check: dict, expected: dict) -> bool:
    """No mismatching group in any rollup, and the ledger and every rollup hold exactly the expected
    requests and tokens (cost up to rounding)."""
    exact = [name for name in expected if name != "cost_usd"]
    sides = (check["ledger"], check["hourly"]["rollup"], check["daily"]["rollup"], check["monthly"]["rollup"])
    return check["mismatches"] == 0 and all(
        [side[name] for name in exact] == [expected[name] for name in exact]
        and side["cost_usd"] == pytest.approx(expected["cost_usd"]) for side in sides)


@pytest.fixture(scope="module")
def steps(week: pd.DataFrame):
    """Load, restart, late rows, load again: the rollup check after each step, and the final DSN."""
    was_running = postgres.running_postgres() is not None
    postgres.start_postgres()
    late = week.sample(frac=0.1, random_state=3)
    on_time = week.drop(late.index)
    checks = {}
    dsn = synthetic.load_into_postgres(on_time, DATABASE)
    checks["loaded"] = rollups.rollup_equals_ledger(dsn)
    postgres.stop_postgres()
    postgres.start_postgres()
    dsn = postgres.create_database(DATABASE)  # the same database, found again after the restart
    usage.write_ledger(dsn, late, chunk_rows=5_000)  # several statements, each adding to existing hours
    checks["late rows"] = rollups.rollup_equals_ledger(dsn)
    usage.write_ledger(dsn, week)
    checks["loaded again"] = rollups.rollup_equals_ledger(dsn)
    with store.connect(dsn) as conn:
        ledger_rows = conn.execute("SELECT count(*) AS n FROM ledger").fetchone()["n"]
    yield {"dsn": dsn, "checks": checks, "on_time": on_time, "late": late, "ledger_rows": ledger_rows}
    postgres.drop_database(DATABASE)
    if not was_running:
        postgres.stop_postgres()


def test_late_rows_land_in_hours_already_rolled_up(steps):
    hours = lambda rows: set(rows["ts"].dt.floor("h"))  # noqa: E731
    assert len(hours(steps["late"]) & hours(steps["on_time"])) > 0.9 * len(hours(steps["late"]))


def test_rollups_equal_the_ledger_to_the_token_after_every_step(steps, week):
    checks = steps["checks"]
    assert same(checks["loaded"], totals(steps["on_time"])), checks["loaded"]
    assert same(checks["late rows"], totals(week)), checks["late rows"]  # after a restart, too
    groups = lambda step: checks[step]["hourly"]["groups"]  # noqa: E731
    assert groups("loaded") < groups("late rows") < len(week)  # late rows make new groups too; fewer than rows
    assert checks["late rows"]["monthly"]["groups"] < checks["late rows"]["daily"]["groups"] < groups("late rows")


def test_a_second_load_of_the_same_requests_changes_nothing(steps, week):
    assert steps["ledger_rows"] == len(week)
    assert same(steps["checks"]["loaded again"], totals(week)), steps["checks"]["loaded again"]


def as_dict(series: pd.Series) -> dict:
    return {tuple(map(str, k)) if isinstance(k, tuple) else str(k): int(v) for k, v in series.items()}


def test_a_bulk_load_builds_the_keys_again_and_refuses_a_ledger_in_use(steps, week):
    with store.connect(steps["dsn"]) as conn:
        indexes = {row["indexname"] for row in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)", [list(usage.ROLLED_UP_TABLES)])}
    assert indexes == {"ledger_pkey", "ledger_request_id", "usage_hourly_pkey", "usage_hourly_user_hour",
                       "usage_daily_pkey", "usage_daily_user_day", "usage_monthly_pkey"}
    # (the synthetic ledger drops ledger_ts and ledger_user_ts)
    with pytest.raises(ValueError, match="fills an empty ledger"):
        usage.bulk_load(steps["dsn"], week.iloc[:10])
    assert rollups.rollup_equals_ledger(steps["dsn"])["ledger"]["requests"] == len(week)  # nothing was added


def test_the_views_from_rollups_equal_pandas_views_of_the_raw_rows(steps, week):
    expected = usage.analyse(usage.as_ledger_frame(week))
    got = rollups.views(steps["dsn"])
    for name in ("by_team", "by_application_model", "by_status"):
        for column in ("requests", "prompt_tokens", "completion_tokens", "tokens"):
            assert as_dict(got[name][column]) == as_dict(expected[name][column]), (name, column)
        assert got[name]["cost_usd"].sum() == pytest.approx(expected[name]["cost_usd"].sum())
    assert rollups.same_counts(got["user_tokens"], expected["user_tokens"])
    assert as_dict(got["top_users"]["tokens"]) == as_dict(expected["top_users"]["tokens"])
    assert list(got["top_users"]["share_of_tokens"]) == pytest.approx(list(expected["top_users"]["share_of_tokens"]))
    assert rollups.same_counts(got["per_month_by_model"], expected["per_day_30d_by_model"].resample("MS").sum())
    for name in ("per_hour_24h_by_model", "per_day_30d_by_model"):
        assert rollups.same_counts(got[name], expected[name]), name
    bill, want = got["chargeback_by_team"], expected["chargeback_by_team"]
    assert as_dict(bill["tokens"]) == as_dict(want["tokens"])
    assert dict(zip(map(str, bill.index), bill["usd"])) == pytest.approx(dict(zip(map(str, want.index), want["usd"])))
    for name in ("rows", "users", "top_1pct_users_token_share"):
        assert got[name] == pytest.approx(expected[name]), name


def test_the_sql_helpers_agree_with_each_other(steps, week):
    dsn = steps["dsn"]
    top = rollups.top_consumers(dsn, 5)
    per_user = rollups.usage_by(dsn, "user_name", "team")
    assert as_dict(top["tokens"]) == as_dict(per_user["tokens"].head(5))
    assert list(top["share_of_tokens"]) == pytest.approx(list(per_user["tokens"].head(5) / per_user["tokens"].sum()))
    tokens = int(week["prompt_tokens"].sum() + week["completion_tokens"].sum())
    assert rollups.user_tokens(dsn).sum() == tokens == rollups.tokens_per_month(dsn, 12)["tokens"].sum()
    assert rollups.user_tokens(dsn, end=pd.Timestamp("2026-10-01", tz="UTC")).empty  # September: nothing
    counts, check = rollups.rollup_rows(dsn), steps["checks"]["loaded again"]
    assert [counts[name] for name in ("hourly", "daily")] == [check[name]["groups"] for name in ("hourly", "daily")]
    answer = rollups.query(dsn, "SELECT team, sum(requests) AS requests FROM usage_monthly GROUP BY team")
    assert dict(zip(answer["team"], answer["requests"])) == as_dict(week.groupby("team", observed=True).size())
    with pytest.raises(ValueError, match="group by any of"):
        rollups.usage_by(dsn, "user_name; DROP TABLE ledger")


def test_the_gateways_statement_keeps_every_rollup_equal_to_the_ledger(steps, week):  # steps: PostgreSQL runs
    """What the plugin sends for a batch (store.BATCH_INSERT_SQL, one array per column): new rows, retried ones
    (already written) and a late one (its hour and day already rolled up)."""
    name = "rollups_gateway_statement_test"
    dsn = synthetic.load_into_postgres(week.iloc[:2_000], name)
    late = week.iloc[[2_500]].assign(ts=week["ts"].iloc[1_000], request_id="late")
    batch = pd.concat([week.iloc[1_990:2_300], late]).assign(ttft_ms=50.0)
    try:
        with store.connect(dsn) as conn:
            conn.execute(store.BATCH_INSERT_SQL, [batch[column].tolist() for column in store.WRITTEN_COLUMNS])
        check = rollups.rollup_equals_ledger(dsn)
        assert same(check, totals(pd.concat([week.iloc[:2_300], late]))), check
    finally:
        postgres.drop_database(name)


def test_migration_3_rolls_an_existing_ledger_up_by_month(steps, week):  # steps: PostgreSQL runs
    """A database of version 2 (ledger and hourly rollups, no monthly ones) upgrades in place."""
    name = "rollups_migration_test"
    dsn = synthetic.load_into_postgres(week.iloc[:5_000], name)
    try:
        with store.connect(dsn) as conn:  # back to version 2, as an instructor's machine prepared last week
            conn.execute("DROP TABLE usage_monthly")
            conn.execute("DROP STATISTICS usage_hourly_user_team")
            conn.execute("DELETE FROM schema_migrations WHERE version = 3")
        assert store.init_schema(dsn) == [3]
        check = rollups.rollup_equals_ledger(dsn)
        assert check["mismatches"] == 0 and check["monthly"]["rollup"]["requests"] == 5_000
        usage.write_ledger(dsn, week.iloc[4_000:6_000])  # new rows after the upgrade: 1,000 known, 1,000 new
        check = rollups.rollup_equals_ledger(dsn)
        assert check["mismatches"] == 0 and check["monthly"]["rollup"]["requests"] == 6_000
    finally:
        postgres.drop_database(name)


def test_retention_drops_a_past_month_at_once_and_the_rollups_keep_it(steps, week):  # steps: PostgreSQL runs
    name = "rollups_retention_test"
    october = week.iloc[:3_000]
    september = week.iloc[3_000:4_000].assign(ts=lambda rows: rows["ts"] - pd.Timedelta(days=30),
                                               request_id=lambda rows: rows["request_id"] + "-sep")
    dsn = synthetic.load_into_postgres(october, name)
    try:
        usage.write_ledger(dsn, september)  # a month the ledger had no partition for: made on the way
        with store.connect(dsn) as conn:
            partitions = {row["name"]: row["n"] for row in conn.execute(
                "SELECT c.relname AS name, (SELECT count(*) FROM ledger l WHERE l.tableoid = c.oid) AS n "
                "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'ledger'::regclass")}
        assert partitions == {"ledger_default": 0, "ledger_2026_09": 1_000, "ledger_2026_10": 3_000}
        assert store.drop_ledger_month(dsn, pd.Timestamp("2026-09-15", tz="UTC")) == 1_000
        check = rollups.rollup_equals_ledger(dsn)  # the ledger's months only
        assert check["mismatches"] == 0 and check["ledger"]["requests"] == 3_000
        by_month = rollups.tokens_per_month(dsn, 12)["tokens"]  # September's sums outlive its raw rows
        assert by_month.sum() == int(week.iloc[:4_000][["prompt_tokens", "completion_tokens"]].sum().sum())
        with pytest.raises(ValueError, match="no partition for 2026-09"):
            store.drop_ledger_month(dsn, pd.Timestamp("2026-09-01", tz="UTC"))
        with pytest.raises(ValueError, match="only past months"):
            store.drop_ledger_month(dsn, pd.Timestamp.now(tz="UTC"))
    finally:
        postgres.drop_database(name)


def test_sla_compliance_per_model_and_hour_from_the_ledgers_latencies():
    """Rows of known latencies, written with the gateway's own statement: PostgreSQL's compliance is the count."""
    was_running = postgres.running_postgres() is not None
    postgres.start_postgres()
    dsn = postgres.create_database("sla_test")
    store.init_schema(dsn)
    hour = pd.Timestamp("2026-11-02 09:00", tz="UTC")
    rows = [  # (minute, model, status, completion tokens, latency ms, ttft ms or None: not streamed)
        (1, "a", "success", 11, 400.0, 100.0),   # first token 100 ms, but (400-100)/10 = 30 ms per token: over
        (2, "a", "success", 11, 300.0, 100.0),   # within: 100 ms, 20 ms per token
        (3, "a", "success", 8, 450.0, None),     # not streamed: the first token came with the answer, 450 ms
        (4, "a", "failure", 0, 50.0, None),      # failed: counts against the SLA
        (5, "a", "client_disconnected", 3, 90.0, 20.0),  # the client hung up: left out
        (6, "b", "success", 8, 900.0, None),     # not streamed, 900 ms: over the first-token limit
        (61, "a", "success", 5, 120.0, 40.0),    # the next hour: within
    ]
    columns = list(store.WRITTEN_COLUMNS)
    values = {c: [] for c in columns}
    for i, (minute, model, status, completion, latency, ttft) in enumerate(rows):
        row = {"ts": (hour + pd.Timedelta(minutes=minute)).to_pydatetime(), "user_name": "u", "team": "t",
               "application": "app", "model": model, "prompt_tokens": 5, "completion_tokens": completion,
               "latency_ms": latency, "status": status, "cost_usd": 0.0, "request_id": f"sla-{i}", "ttft_ms": ttft}
        for c in columns:
            values[c].append(row[c])
    with store.connect(dsn) as conn:
        store.ensure_ledger_months(conn, {pd.Timestamp("2026-11-01", tz="UTC").to_pydatetime()})
        conn.execute(store.BATCH_INSERT_SQL, [values[c] for c in columns])
    try:
        sla = rollups.sla_compliance(dsn, ttft_p95_ms=500, tpot_p95_ms=25, hours=24)
        nine = sla.loc[hour]
        assert nine.loc["a", "requests"] == 4 and nine.loc["a", "within_sla"] == 2 and nine.loc["a", "streamed"] == 2
        assert nine.loc["a", "tpot_p95_ms"] == pytest.approx(30 - 0.05 * 10)  # of 30 and 20 ms per token
        assert nine.loc["a", "compliance"] == 0.5 and not nine.loc["a", "meets_slo"]
        assert nine.loc["b", "within_sla"] == 0 and nine.loc["b", "ttft_p95_ms"] == pytest.approx(900)
        ten = sla.loc[(hour + pd.Timedelta(hours=1), "a")]
        assert ten["compliance"] == 1.0 and ten["meets_slo"]
        assert len(rollups.sla_compliance(dsn, 500, 25, hours=1)) == 1  # the last hour only
    finally:
        postgres.drop_database("sla_test")
        if not was_running:
            postgres.stop_postgres()
