"""The portal's numbers equal Lab 6's for the same period: the pages' queries (helpers.gateway.portal_data, which
the usage and admin pages draw) against pandas over the raw ledger rows (helpers.usage) and the rollup views
(helpers.rollups), on a synthetic month of 200 employees in real PostgreSQL."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from helpers import rollups, synthetic, usage
from helpers.gateway import portal_data, postgres

pytestmark = pytest.mark.integration
DATABASE = "portal_totals_test"


@pytest.fixture(scope="module")
def month():
    rows = synthetic.synthetic_month(synthetic.CompanyProfile(employees=200, teams=4), days=30, seed=13)
    rows["request_id"] = [f"synthetic-{i}" for i in range(len(rows))]
    was_running = postgres.running_postgres() is not None
    postgres.start_postgres()
    dsn = synthetic.load_into_postgres(rows, DATABASE)
    frame = usage.as_ledger_frame(rows)
    yield dsn, frame, frame["ts"].max().ceil("h"), frame["ts"].max().ceil("D")
    postgres.drop_database(DATABASE)
    if not was_running:
        postgres.stop_postgres()


def series(rows: list[dict], column: str = "tokens") -> pd.Series:
    return pd.Series({pd.Timestamp(r["period"]).tz_convert("UTC"): r[column] for r in rows})


def test_the_24_hours_and_30_days_equal_pandas_and_the_rollups(month):
    dsn, frame, hour_end, day_end = month
    hours = series(portal_data.usage_series(dsn, "hour", 24, end=hour_end.to_pydatetime()))
    days = series(portal_data.usage_series(dsn, "day", 30, end=day_end.to_pydatetime()))
    assert len(hours) == 24 and len(days) == 30
    assert rollups.same_counts(hours, usage.tokens_per_hour(frame, 24)["tokens"])  # pandas, raw rows
    assert rollups.same_counts(days, usage.tokens_per_day(frame, 30)["tokens"])
    assert rollups.same_counts(hours, rollups.tokens_per_hour(dsn, 24, end=hour_end)["tokens"])  # Lab 6's views
    assert rollups.same_counts(days, rollups.tokens_per_day(dsn, 30, end=day_end)["tokens"])
    requests = series(portal_data.usage_series(dsn, "day", 30, end=day_end.to_pydatetime()), "requests")
    assert requests.sum() == len(frame[frame["ts"] >= day_end - pd.Timedelta(days=30)]) > 1000


def test_one_users_page_and_the_per_application_table_equal_pandas(month):
    dsn, frame, _, day_end = month
    user = frame["user_name"].value_counts().index[0]
    window = frame[(frame["ts"] >= day_end - pd.Timedelta(days=30)) & (frame["user_name"] == user)]
    mine = portal_data.usage_series(dsn, "day", 30, user=str(user), end=day_end.to_pydatetime())
    assert sum(r["tokens"] for r in mine) == int(window["tokens"].sum())
    table = portal_data.usage_breakdown(dsn, (day_end - pd.Timedelta(days=30)).to_pydatetime(),
                                        day_end.to_pydatetime(), str(user))
    expected = usage.usage_by(window, "application", "model")
    assert {(r["application"], r["model"]): (r["requests"], r["prompt_tokens"], r["completion_tokens"])
            for r in table} == {key: (int(row["requests"]), int(row["prompt_tokens"]), int(row["completion_tokens"]))
                                for key, row in expected.iterrows()}
    assert sum(r["cost_usd"] for r in table) == pytest.approx(float(window["cost_usd"].sum()))


def test_the_csv_export_adds_up_to_the_same_tokens(month):
    dsn, frame, _, day_end = month
    exported = list(csv.DictReader(io.StringIO(portal_data.usage_csv(dsn, None, 30, day_end.to_pydatetime()))))
    window = frame[frame["ts"] >= day_end - pd.Timedelta(days=30)]
    assert sum(int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in exported) == int(window["tokens"].sum())
    assert sum(int(r["requests"]) for r in exported) == len(window)


def test_the_admin_top_consumers_equal_lab_6s(month):
    dsn, frame, _, _ = month
    october = synthetic.MONTH_END - pd.Timedelta(days=1)
    top = portal_data.top_consumers(dsn, 5, october.to_pydatetime())
    expected = usage.top_consumers(frame[frame["ts"].dt.month == october.month], 5)
    assert [(r["user_name"], r["tokens"]) for r in top] == \
        [(user, int(row["tokens"])) for (user, _), row in expected.iterrows()]


def test_whole_days_read_the_daily_rollups_other_windows_the_hourly_ones_and_both_equal_pandas(month):
    dsn, frame, _, day_end = month
    check = rollups.rollup_equals_ledger(dsn)
    assert check["mismatches"] == 0
    assert check["monthly"]["groups"] < check["daily"]["groups"] < check["hourly"]["groups"]
    whole_days = (day_end - pd.Timedelta(days=7), day_end)
    part_days = (day_end - pd.Timedelta(hours=53), day_end - pd.Timedelta(hours=5))
    assert portal_data.rollup_for(*whole_days) == "day" and portal_data.rollup_for(*part_days) == "hour"
    for since, end in (whole_days, part_days):
        window = frame[(frame["ts"] >= since) & (frame["ts"] < end)]
        table = portal_data.usage_breakdown(dsn, since.to_pydatetime(), end.to_pydatetime())
        assert {(r["application"], r["model"]): (r["requests"], r["prompt_tokens"] + r["completion_tokens"])
                for r in table} == {key: (int(row["requests"]), int(row["tokens"]))
                                    for key, row in usage.usage_by(window, "application", "model").iterrows()}
