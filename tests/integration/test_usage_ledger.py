"""The ledger round trip through real PostgreSQL: COPY in, COPY out, same rows, same analysis."""
from __future__ import annotations

import pytest

from helpers import synthetic, usage
from helpers.gateway import postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database():
    was_running = postgres.running_postgres() is not None
    postgres.start_postgres()
    yield "usage_test"
    postgres.drop_database("usage_test")
    if not was_running:
        postgres.stop_postgres()


def test_a_month_survives_the_round_trip_and_analyses_the_same(database):
    month = synthetic.synthetic_month(synthetic.CompanyProfile(employees=300, teams=5), days=7, seed=11)
    dsn = synthetic.load_into_postgres(month, database)
    back = usage.read_ledger(dsn)
    assert len(back) == len(month)
    assert back["prompt_tokens"].sum() == month["prompt_tokens"].sum()
    assert back["cost_usd"].sum() == pytest.approx(month["cost_usd"].sum())
    assert back["ts"].min() == month["ts"].min() and back["ts"].max() == month["ts"].max()
    expected = usage.usage_by(usage.as_ledger_frame(month), "team")["tokens"]
    tables, stats = usage.analyse_in_fresh_process(dsn)
    assert {str(k): int(v) for k, v in tables["by_team"]["tokens"].items()} == {str(k): int(v) for k, v in expected.items()}
    assert tables["chargeback_by_team"]["usd"].sum() == pytest.approx(month["cost_usd"].sum())  # one price table
    assert stats["rows"] == len(month) and stats["seconds"] > 0 and stats["peak_memory_gb"] > 0.05
