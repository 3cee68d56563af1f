"""A gateway database made by the released code (0478c47) upgrades in place: keys, plans and ledger survive."""
from __future__ import annotations

import importlib.util
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from helpers import rollups
from helpers.gateway import migrations, postgres, store

pytestmark = pytest.mark.integration
OLD_STORE = Path(__file__).parent.parent / "data" / "store_0478c47.py"


def old_store():
    spec = importlib.util.spec_from_file_location("store_0478c47", OLD_STORE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def database():
    was_running = postgres.running_postgres() is not None
    postgres.start_postgres()
    name = f"migration_{uuid.uuid4().hex[:8]}"
    yield postgres.create_database(name)
    postgres.drop_database(name)
    if not was_running:
        postgres.stop_postgres()


def make_old_ledger(dsn: str) -> dict:
    """What an instructor's machine holds after a day of the released gateway."""
    old = old_store()
    old.init_schema(dsn)
    old.ensure_user(dsn, "ana", "support")
    old.ensure_user(dsn, "bo", "sales")
    kept = old.create_application(dsn, "ana", "bot", ["parasol-tiny"], "unlimited")
    revoked = old.create_application(dsn, "ana", "old/bot", ["parasol-tiny"], "trial")
    old.revoke_application(dsn, "ana", "old/bot")
    old.create_application(dsn, "bo", "crm", ["parasol-tiny"], "standard")
    now = datetime.now(timezone.utc)
    rows = [(now - timedelta(hours=h), "ana", "support", "bot", "parasol-tiny", 10 + h, 5, 30.0, "success", 1e-5, f"r{h}")
            for h in range(5)]
    rows.append(rows[0])  # the old writer could double a row on retry
    rows.append((now, "ana", "support", "bot", "-", 0, 0, 0.0, "refused:model_not_allowed", 0.0, None))
    with old.connect(dsn) as conn:
        old.insert_ledger_rows(conn, rows)
    return {"key": kept.key, "revoked_key": revoked.key, "rows": rows}


def test_an_old_ledger_upgrades_in_place(database):
    made = make_old_ledger(database)
    assert store.init_schema(database) == [m.version for m in migrations.MIGRATIONS]  # version 1 finds its tables
    # there (IF NOT EXISTS) and is recorded; the later ones add to them
    assert store.init_schema(database) == []  # idempotent
    with store.connect(database) as conn:
        app = conn.execute(store.KEY_LOOKUP_SQL, {"hash": store.hash_key(made["key"])}).fetchone()
        assert app["application"] == "bot" and app["current_key"] and app["revoked_at"] is None
        users = {r["name"]: r["plan"] for r in conn.execute("SELECT name, plan FROM users")}
        assert users == {"ana": "unlimited", "bo": "standard"}
        assert conn.execute("SELECT count(*) AS n FROM ledger").fetchone()["n"] == len(made["rows"]) - 1
        assert conn.execute("SELECT count(*) AS n FROM ledger_duplicates").fetchone()["n"] == 1
        ledger = conn.execute("SELECT sum(prompt_tokens) AS p, sum(completion_tokens) AS c, count(*) AS n "
                              "FROM ledger").fetchone()
        rollup = conn.execute("SELECT sum(prompt_tokens) AS p, sum(completion_tokens) AS c, sum(requests) AS n "
                              "FROM usage_hourly").fetchone()
        assert (ledger["p"], ledger["c"], ledger["n"]) == (rollup["p"], rollup["c"], rollup["n"])
        assert rollups.rollup_equals_ledger(database)["mismatches"] == 0  # hourly and monthly, group by group
        partitioned = conn.execute("SELECT count(*) AS n FROM pg_partitioned_table "
                                   "WHERE partrelid = 'ledger'::regclass").fetchone()["n"]
        months = conn.execute("SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'ledger'::regclass "
                              "AND inhrelid::regclass::text LIKE 'ledger_20%'").fetchone()["n"]
        assert partitioned == 1 and months >= 1  # partitioned by month, the old rows in their months
        versions = [r["version"] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [m.version for m in migrations.MIGRATIONS]
    store.revoke_application(database, "ana", "bot")  # the new code manages old applications
    with pytest.raises(store.StoreError, match="no active application"):
        store.revoke_application(database, "ana", "old/bot")  # revoked before, name with "/" found


def test_a_fresh_database_gets_every_version(database):
    assert store.init_schema(database) == [m.version for m in migrations.MIGRATIONS]
    store.ensure_user(database, "cy", "ops")
    app = store.create_application(database, "cy", "first", ["m"], ["m"])
    assert app.plan == "standard" and app.key.startswith(store.KEY_PREFIX)
