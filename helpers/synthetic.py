"""A realistic synthetic month of gateway usage for a 19,000-employee company.

What makes it realistic, each a parameter of ``CompanyProfile``:
- not everybody uses the service; users' activity is heavy-tailed (lognormal):
  a few agents and power users make a large share of the tokens;
- working hours and weekdays: requests follow a daily rhythm with a lunch dip
  and a weekly rhythm with quiet weekends;
- teams of different sizes, several models and applications, prompt and
  completion lengths that vary by request, a few failures and refusals.
Rows have the ledger's columns, so Lab 6 analyses them with the same code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .gateway.store import LEDGER_COLUMNS
from .prices import price_of

HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 4, 10, 22, 30, 32, 28, 16, 24, 30, 29, 24, 16, 9, 6, 4, 3, 2, 1], float)
WEEKDAY_WEIGHTS = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.12, 0.08])  # Monday .. Sunday
APP_KINDS = ("chat", "summarizer", "code-assistant", "rag-search", "agent")


@dataclass(frozen=True)
class CompanyProfile:
    employees: int = 19_000
    teams: int = 60
    adoption: float = 0.72  # share of employees who use the service in the month
    requests_per_user_day_median: float = 15.0  # on a weekday, for a median user
    activity_sigma: float = 1.3  # lognormal spread of users' activity: the heavy tail
    prompt_tokens_median: float = 350.0
    completion_tokens_median: float = 160.0
    models: dict[str, float] = field(default_factory=lambda: {
        "granite-3.1-8b-instruct": 0.50, "llama-3.1-8b-instruct-w4a16": 0.30,
        "mistral-7b-instruct-v0.3": 0.12, "deepseek-r1-distill-qwen-14b-w4a16": 0.08})
    status: dict[str, float] = field(default_factory=lambda: {
        "success": 0.992, "failure": 0.003, "rate_limited": 0.004, "refused:budget_exceeded": 0.001})


# The month is pinned (October 2026, Thursday 1 to Friday 30): its size must not move with the day it is made.
MONTH_END = pd.Timestamp("2026-10-31", tz="UTC")


def _day_weights(start: pd.Timestamp, days: int) -> np.ndarray:
    weekdays = (start + pd.to_timedelta(np.arange(days), "D")).dayofweek
    return WEEKDAY_WEIGHTS[weekdays]


def _period(days: int, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = end.floor("h")
    return (end - pd.Timedelta(days=days)).floor("D"), end


def expected_requests(profile: CompanyProfile = CompanyProfile(), days: int = 30, end: pd.Timestamp = MONTH_END) -> float:
    """The mean number of requests the profile gives: users x median rate x lognormal mean x weighted days."""
    start, _ = _period(days, end)
    lognormal_mean = np.exp(profile.activity_sigma ** 2 / 2)
    return (profile.employees * profile.adoption * profile.requests_per_user_day_median * lognormal_mean
            * _day_weights(start, days).sum())


def synthetic_month(profile: CompanyProfile = CompanyProfile(), days: int = 30,
                    end: pd.Timestamp = MONTH_END, seed: int = 7) -> pd.DataFrame:
    """One ledger row per request over ``days`` days ending at ``end`` (the pinned month by default)."""
    rng = np.random.default_rng(seed)
    start, _ = _period(days, end)

    users = np.flatnonzero(rng.random(profile.employees) < profile.adoption)
    team_sizes = rng.zipf(1.6, profile.teams).clip(max=50).astype(float)
    team_of_user = rng.choice(profile.teams, size=profile.employees, p=team_sizes / team_sizes.sum())
    daily_rate = profile.requests_per_user_day_median * rng.lognormal(0.0, profile.activity_sigma, len(users))
    day_weights = _day_weights(start, days)
    counts = rng.poisson(daily_rate * day_weights.sum())
    user = np.repeat(users, counts)
    n = len(user)

    day = rng.choice(days, size=n, p=day_weights / day_weights.sum())
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    seconds = day * 86_400 + hour * 3_600 + rng.random(n) * 3_600
    ts = (start + pd.to_timedelta(seconds, "s")).astype("datetime64[us, UTC]")

    model_names = np.array(list(profile.models))
    favourite_model = rng.choice(len(model_names), size=profile.employees, p=list(profile.models.values()))
    model = np.where(rng.random(n) < 0.8, favourite_model[user],
                     rng.choice(len(model_names), size=n, p=list(profile.models.values())))
    app_kind = rng.choice(len(APP_KINDS), size=profile.employees, p=[0.45, 0.2, 0.15, 0.12, 0.08])

    prompt = rng.lognormal(np.log(profile.prompt_tokens_median), 0.9, n).clip(5, 32_000).astype(np.int32)
    completion = rng.lognormal(np.log(profile.completion_tokens_median), 0.8, n).clip(1, 4_096).astype(np.int32)
    status_names = np.array(list(profile.status))
    status = rng.choice(len(status_names), size=n, p=list(profile.status.values()))
    billed = status == 0
    prompt, completion = np.where(billed, prompt, 0), np.where(billed, completion, 0)
    latency = (180 + completion * 22.0 * rng.lognormal(0, 0.25, n)).astype(np.float32)
    model_prices = [price_of(name) for name in model_names]  # the gateway's price table, as on a live ledger
    prompt_rate = np.array([p.prompt_usd_per_million for p in model_prices])[model]
    completion_rate = np.array([p.completion_usd_per_million for p in model_prices])[model]

    user_names = pd.Categorical.from_codes(user, [f"employee-{i:05d}" for i in range(profile.employees)])
    teams = pd.Categorical.from_codes(team_of_user[user], [f"team-{t:02d}" for t in range(profile.teams)])
    apps = pd.Categorical.from_codes(app_kind[user], list(APP_KINDS))
    frame = pd.DataFrame({
        "ts": ts, "user_name": user_names, "team": teams, "application": apps,
        "model": pd.Categorical.from_codes(model, model_names), "prompt_tokens": prompt,
        "completion_tokens": completion, "latency_ms": latency,
        "status": pd.Categorical.from_codes(status, status_names),
        "cost_usd": (prompt * prompt_rate + completion * completion_rate) / 1e6, "request_id": None,
    }, columns=list(LEDGER_COLUMNS))
    return frame.sort_values("ts", ignore_index=True)


def load_into_postgres(frame: pd.DataFrame, database: str = "synthetic") -> str:
    """Load the month into a fresh database of its own, with the gateway's schema; returns its DSN.

    The database is made anew (``store.init_schema``: the gateway's migrations) and filled like a
    restore (``usage.bulk_load``: rows copied in, the hourly and monthly rollups computed once from
    them, indexes built after). Its tables are UNLOGGED and the ledger keeps only its keys (request
    ids: a second load of the same rows adds nothing): it is a sample (the seed makes it again) and
    the naive analysis reads all of it.
    VACUUM FREEZE sets the rows' hint bits now, so the first analysis does not pay for it; ANALYZE
    gives the planner the rollups' statistics.
    """
    from .gateway import postgres, store
    from .usage import ROLLED_UP_TABLES, bulk_load

    postgres.drop_database(database)
    dsn = postgres.create_database(database)
    store.init_schema(dsn)
    with store.connect(dsn) as conn:
        for table in ROLLED_UP_TABLES:
            conn.execute(f"ALTER TABLE {table} SET UNLOGGED")
        conn.execute("DROP INDEX ledger_ts")
        conn.execute("DROP INDEX ledger_user_ts")
    bulk_load(dsn, frame)
    with store.connect(dsn) as conn:
        for table in ROLLED_UP_TABLES:
            conn.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
    return dsn
