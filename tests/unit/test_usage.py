"""Usage analysis, chargeback and the synthetic month: behaviour on known data."""
from __future__ import annotations

import pandas as pd
import pytest

from helpers import prices, synthetic, usage
from helpers.gateway.store import LEDGER_COLUMNS
from helpers.prices import Price


def ledger(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (iso time, user, team, model, prompt, completion)."""
    frame = pd.DataFrame([{"ts": ts, "user_name": u, "team": t, "application": "app", "model": m,
                           "prompt_tokens": p, "completion_tokens": c, "latency_ms": 10.0, "status": "success",
                           "cost_usd": 0.0, "request_id": None} for ts, u, t, m, p, c in rows])
    return usage.as_ledger_frame(frame)


KNOWN_ROWS = [
    ("2026-11-20 09:10", "ana", "red", "granite", 100, 50),
    ("2026-11-20 09:40", "ana", "red", "llama", 10, 5),
    ("2026-11-20 10:05", "ben", "blue", "granite", 1000, 500),
    ("2026-11-19 10:05", "ben", "blue", "granite", 1, 1),
]
KNOWN = ledger(KNOWN_ROWS)


def test_usage_by_user_sums_tokens_and_sorts_heaviest_first():
    table = usage.usage_by(KNOWN, "user_name")
    assert list(table.index) == ["ben", "ana"]
    assert table.loc["ben", "tokens"] == 1502 and table.loc["ana", "requests"] == 2


def test_tokens_per_hour_and_per_day_bucket_by_time():
    hourly = usage.tokens_per_hour(KNOWN, hours=24)
    assert hourly.loc[pd.Timestamp("2026-11-20 09:00", tz="UTC"), "tokens"] == 165
    assert pd.Timestamp("2026-11-19 10:00", tz="UTC") not in hourly.index  # 25 hours before the end
    daily = usage.tokens_per_day(KNOWN, days=30, by="model")
    assert daily.loc[pd.Timestamp("2026-11-20", tz="UTC"), "granite"] == 1650


def test_price_per_million_tokens_pays_for_the_gpu():
    # $1/h, 1000 tokens/s fully busy: 3.6 M tokens an hour -> $0.2778 per million
    assert usage.price_per_million_tokens(1.0, 1000, 1.0) == pytest.approx(1 / 3.6)
    assert usage.price_per_million_tokens(1.0, 1000, 0.5) == pytest.approx(2 / 3.6)
    with pytest.raises(ValueError, match="utilization"):
        usage.price_per_million_tokens(1.0, 1000, 0)


PRICES = {"granite": Price(1.0, 3.0), "default": Price(10.0, 20.0)}  # llama is unlisted: it pays the default


def test_chargeback_prices_prompt_and_completion_tokens_of_each_model_apart():
    bill = usage.chargeback(KNOWN, PRICES, by="team")
    assert bill.loc["blue", "usd"] == pytest.approx((1001 * 1.0 + 501 * 3.0) / 1e6)
    assert bill.loc["red", "usd"] == pytest.approx((100 * 1.0 + 50 * 3.0 + 10 * 10.0 + 5 * 20.0) / 1e6)
    assert bill.loc["red", "prompt_tokens"] == 110 and bill.loc["red", "completion_tokens"] == 55
    assert bill["share"].sum() == pytest.approx(1.0) and bill.index[0] == "blue"


def test_chargeback_uses_the_committed_table_like_the_gateway():
    bill = usage.chargeback(KNOWN, by="user_name")
    expected = sum(prices.cost_usd(m, p, c) for _, u, _, m, p, c in KNOWN_ROWS if u == "ana")
    assert bill.loc["ana", "usd"] == pytest.approx(expected)


def test_cap_savings_counts_only_tokens_above_the_cap():
    savings = usage.cap_savings(pd.Series([10, 100, 1000]), cap=100)
    assert savings["users_capped"] == 1 and savings["tokens_not_served"] == 900
    assert savings["share_of_tokens"] == pytest.approx(900 / 1110)


def test_a_frame_without_ledger_columns_is_refused():
    with pytest.raises(ValueError, match="columns"):
        usage.as_ledger_frame(pd.DataFrame({"ts": [], "user_name": []}))


@pytest.fixture(scope="module")
def small_month():
    profile = synthetic.CompanyProfile(employees=2_000, teams=12)
    return usage.as_ledger_frame(synthetic.synthetic_month(profile, days=28, seed=3))


def test_the_synthetic_month_has_the_ledger_columns_and_is_reproducible(small_month):
    again = synthetic.synthetic_month(synthetic.CompanyProfile(employees=2_000, teams=12), days=28, seed=3)
    assert list(again.columns) == list(LEDGER_COLUMNS)
    assert len(again) == len(small_month) and again["prompt_tokens"].sum() == small_month["prompt_tokens"].sum()


def test_the_synthetic_month_has_daily_and_weekly_rhythms(small_month):
    by_hour = small_month.groupby(small_month["ts"].dt.hour)["tokens"].sum()
    assert by_hour.loc[10] > 10 * by_hour.loc[3] and by_hour.loc[12] < by_hour.loc[10]  # nights, lunch dip
    by_weekday = small_month.groupby(small_month["ts"].dt.dayofweek)["tokens"].sum()
    assert by_weekday.loc[[5, 6]].max() < 0.25 * by_weekday.loc[[0, 1, 2, 3]].min()  # quiet weekends


def test_the_synthetic_users_are_heavy_tailed_and_refusals_use_no_tokens(small_month):
    per_user = usage.usage_by(small_month, "user_name")["tokens"]
    assert per_user.head(len(per_user) // 100).sum() > 0.08 * per_user.sum()  # 1% of users, >8% of tokens
    assert (small_month.loc[small_month["status"] != "success", "tokens"] == 0).all()


def test_the_synthetic_ledger_costs_what_the_price_table_bills(small_month):
    bill = usage.chargeback(small_month, by="team")
    assert bill["usd"].sum() == pytest.approx(small_month["cost_usd"].sum())
    assert small_month["model"].nunique() == 4 and small_month["team"].nunique() > 5
