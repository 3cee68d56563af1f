"""A gateway database made by older code upgrades in place: keys, plans and ledger survive (the released 0478c47),
and the rows version 5 wrote come out right in the daily rollups of version 6."""
from __future__ import annotations

import importlib.util
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from helpers import rollups, synthetic, usage
from helpers.gateway import migrations, postgres, reader, scopes, store

pytestmark = pytest.mark.integration
DATA = Path(__file__).parent.parent / "data"
OLD_STORE = DATA / "store_0478c47.py"
APPEND_ROWS_V5 = DATA / "append_rows_v5.sql"


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
        check = rollups.rollup_equals_ledger(database)  # hourly, daily and monthly, group by group
        assert check["mismatches"] == 0 and check["daily"]["rollup"]["requests"] == len(made["rows"]) - 1
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


def write_as_version_5(dsn: str, rows: pd.DataFrame) -> None:
    """Append rows the way version 5 did (usage.write_ledger with that version's statement): ledger, hourly and
    monthly rollups."""
    columns = ", ".join(store.LEDGER_COLUMNS)
    statement = APPEND_ROWS_V5.read_text().format(columns=columns, source=f"SELECT {columns} FROM ledger_staging")
    with store.connect(dsn) as conn:
        store.ensure_ledger_months(conn, usage.months_of(rows))
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE ledger_staging ON COMMIT DROP AS SELECT {columns} FROM ledger WITH NO DATA")
        usage.copy_rows(cur, "ledger_staging", rows[list(store.LEDGER_COLUMNS)])
        cur.execute(statement)


def per_day(rows: pd.DataFrame) -> dict:
    days = rows.groupby(rows["ts"].dt.floor("D"))
    return {day: (len(group), int(group["prompt_tokens"].sum()), int(group["completion_tokens"].sum()))
            for day, group in days}


def test_the_rows_version_5_wrote_come_out_right_in_the_daily_rollups(database):
    """A version 5 database holds October, late rows in hours already rolled up, and September's sums whose raw
    rows retention dropped: migration 6 rolls all of it up by day, and rows written after add themselves."""
    rows = synthetic.synthetic_month(synthetic.CompanyProfile(employees=120, teams=4), days=7, seed=5)
    rows["request_id"] = [f"v5-{i}" for i in range(len(rows))]
    september = rows.iloc[:800].assign(ts=lambda r: r["ts"] - pd.Timedelta(days=30),
                                       request_id=lambda r: r["request_id"] + "-sep")
    late = rows.sample(frac=0.1, random_state=2)
    october, after_upgrade = rows.drop(late.index).iloc[:-500], rows.drop(late.index).iloc[-500:]
    assert migrations.migrate(database, up_to=5) == [1, 2, 3, 4, 5]
    for batch in (september, october, late):
        write_as_version_5(database, batch)
    assert store.drop_ledger_month(database, pd.Timestamp("2026-09-01", tz="UTC")) == len(september)

    assert store.init_schema(database) == [6, 7, 8]
    check = rollups.rollup_equals_ledger(database)  # the ledger's month, group by group, to the token
    assert check["mismatches"] == 0 and check["daily"]["rollup"]["requests"] == len(october) + len(late)
    assert check["monthly"]["groups"] < check["daily"]["groups"] < check["hourly"]["groups"]
    with store.connect(database) as conn:
        daily = {row["day"]: (row["requests"], row["prompt_tokens"], row["completion_tokens"]) for row in conn.execute(
            "SELECT day, sum(requests)::bigint AS requests, sum(prompt_tokens)::bigint AS prompt_tokens, "
            "sum(completion_tokens)::bigint AS completion_tokens FROM usage_daily GROUP BY day")}
    assert daily == per_day(pd.concat([september, october, late]))  # September's days outlive its raw rows

    usage.write_ledger(database, after_upgrade)  # the new code's statement adds to the daily rollups too
    check = rollups.rollup_equals_ledger(database)
    assert check["mismatches"] == 0 and check["daily"]["rollup"]["requests"] == len(rows)


def test_a_version_6_room_upgrades_to_scoped_admins_and_a_ledger_reader(database):
    """A room made before admin scopes: its users and plans stay the platform team's (no scope), so an
    attendee's scoped key cannot touch them; the full admin still manages them; the reader may read the ledger."""
    assert migrations.migrate(database, up_to=6) == [1, 2, 3, 4, 5, 6]
    with store.connect(database) as conn:
        conn.execute("INSERT INTO plans VALUES ('trial', 30, 20000, 0.05)")
        conn.execute("INSERT INTO users (name, team) VALUES ('ana', 'support')")
    assert store.init_schema(database) == [7, 8]
    with store.connect(database) as conn:
        assert conn.execute("SELECT admin_scope FROM users WHERE name = 'ana'").fetchone()["admin_scope"] is None
        assert {r["admin_scope"] for r in conn.execute("SELECT admin_scope FROM plans")} == {None}
        grants = {r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.role_table_grants WHERE grantee = %s", (reader.ROLE,))}
    assert grants == set(reader.TABLES)
    scopes.issue_key(database, "zoe")
    with pytest.raises(scopes.OutOfScope, match="user 'ana' belongs to the platform team"):
        scopes.check_user(database, "zoe", "ana")
    with pytest.raises(scopes.OutOfScope, match="plan 'trial' exists and is not this scope's"):
        scopes.set_plan(database, "zoe", "trial", 1, 1, 0.0)
    store.cap_user(database, "ana", 10)  # the platform team's key: as before
    scopes.register_user(database, "zoe", "zoe-dev", "support", "trial")  # a platform plan: grantable
    assert [u["name"] for u in store.users(database, admin_scope="zoe")] == ["zoe-dev"]
