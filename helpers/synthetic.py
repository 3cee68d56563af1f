"""A realistic synthetic month of gateway usage for a 19,000-employee company.

What makes it realistic, each a parameter of ``company.CompanyProfile`` (the demand Lab 3 sizes for):
- not everybody uses the service; users' activity is heavy-tailed (lognormal):
  a few agents and power users make a large share of the tokens;
- working hours and weekdays: requests follow a daily rhythm with a lunch dip
  and a weekly rhythm with quiet weekends;
- teams of different sizes, several models and applications, prompt and
  completion lengths that vary by request, a few failures and refusals.
Rows have the ledger's columns, so Lab 6 analyses them with the same code.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .company import HOUR_WEIGHTS, MONTH_END, CompanyProfile, day_weights, expected_requests, period
from .gateway.store import LEDGER_COLUMNS
from .prices import price_of

APP_KINDS = ("chat", "summarizer", "code-assistant", "rag-search", "agent")
__all__ = ["CompanyProfile", "MONTH_END", "expected_requests", "synthetic_month", "fresh_database",
           "load_into_postgres"]


def synthetic_month(profile: CompanyProfile = CompanyProfile(), days: int = 30,
                    end: pd.Timestamp = MONTH_END, seed: int = 7) -> pd.DataFrame:
    """One ledger row per request over ``days`` days ending at ``end`` (the pinned month by default)."""
    rng = np.random.default_rng(seed)
    start, _ = period(days, end)

    users = np.flatnonzero(rng.random(profile.employees) < profile.adoption)
    team_sizes = rng.zipf(1.6, profile.teams).clip(max=50).astype(float)
    team_of_user = rng.choice(profile.teams, size=profile.employees, p=team_sizes / team_sizes.sum())
    daily_rate = profile.requests_per_user_day_median * rng.lognormal(0.0, profile.activity_sigma, len(users))
    weights = day_weights(start, days)
    counts = rng.poisson(daily_rate * weights.sum())
    user = np.repeat(users, counts)
    n = len(user)

    day = rng.choice(days, size=n, p=weights / weights.sum())
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


def fresh_database(database: str, platform=None) -> str:
    """An empty database for the month, its DSN: in the local PostgreSQL; on a cluster platform in the scratch
    PostgreSQL of the attendee's namespace (a workbench has no server of its own)."""
    from .gateway import postgres
    from .platform import KubernetesPlatform, get_platform

    platform = platform or get_platform()
    if isinstance(platform, KubernetesPlatform):
        return platform.scratch_database(database)
    postgres.drop_database(database)
    return postgres.create_database(database)


def load_into_postgres(frame: pd.DataFrame, database: str = "synthetic", platform=None) -> str:
    """Load the month into a fresh database of its own (``fresh_database``), with the gateway's schema; its DSN.

    The database is made anew (``store.init_schema``: the gateway's migrations) and filled like a
    restore (``usage.bulk_load``: rows copied in, the hourly and monthly rollups computed once from
    them, indexes built after). Its tables are UNLOGGED and the ledger keeps only its keys (request
    ids: a second load of the same rows adds nothing): it is a sample (the seed makes it again) and
    the naive analysis reads all of it.
    VACUUM FREEZE sets the rows' hint bits now, so the first analysis does not pay for it; ANALYZE
    gives the planner the rollups' statistics.
    """
    from .gateway import store
    from .usage import ROLLED_UP_TABLES, bulk_load

    dsn = fresh_database(database, platform)
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
