"""The ledger's read-only role (``maas_reader``) in a real PostgreSQL: what Lab 6 reads works, nothing else does.

The role is made as on the cluster: the gateway's migrations grant it the ledger and its rollups, and the
PostgreSQL pod's start script (``reader.START_SCRIPT``, run here with bash and psql as the sclorg image sources
it) gives it its login and password from the environment. Then Lab 6's own reads run as that role, and every
write, every DDL and every table it should not see is refused by PostgreSQL itself (sessions here are NOT
read-only, so the refusals come from the role's privileges, not from the session).
"""
from __future__ import annotations

import os
import secrets
import subprocess

import psycopg
import pytest

from helpers import rollups, synthetic, usage
from helpers.gateway import migrations, portal_data, postgres, reader, store

pytestmark = pytest.mark.integration
DATABASE = "reader_test"


def run_start_script(server: postgres.Postgres, database: str, password: str) -> subprocess.CompletedProcess:
    """The pod's start script, as the sclorg image sources it: psql on the server as its superuser."""
    env = {**os.environ, "PATH": f"{postgres.find_bin_dir()}:{os.environ['PATH']}", "PGHOST": server.host,
           "PGPORT": str(server.port), "PGUSER": server.user, "PGPASSWORD": server.password,
           "POSTGRESQL_DATABASE": database, reader.PASSWORD_ENV: password}
    return subprocess.run(["bash", "-c", reader.START_SCRIPT], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def ledger():
    """A small month of usage in a database of its own, and the reader's DSN (its password from the script)."""
    was_running = postgres.running_postgres() is not None
    server = postgres.start_postgres()
    month = synthetic.synthetic_month(synthetic.CompanyProfile(employees=200, teams=4), days=3, seed=5)
    owner_dsn = synthetic.load_into_postgres(month, DATABASE)
    store.ensure_user(owner_dsn, "ana", "support")
    store.create_application(owner_dsn, "ana", "bot", ["parasol-tiny"])
    password = secrets.token_urlsafe(18)
    for _ in range(2):  # every start of the pod runs it: twice is the same
        done = run_start_script(server, DATABASE, password)
        assert done.returncode == 0, done.stderr
    reader_dsn = (f"host={server.host} port={server.port} user={reader.ROLE} password={password} "
                  f"dbname={DATABASE}")
    yield {"owner": owner_dsn, "reader": reader_dsn, "rows": len(month), "server": server}
    postgres.drop_database(DATABASE)
    if not was_running:
        postgres.stop_postgres()


def test_the_reader_reads_what_lab6_reads(ledger):
    live = usage.read_ledger(ledger["reader"])  # Lab 6: the raw ledger into pandas
    assert len(live) == ledger["rows"] > 1000
    with portal_data.snapshot(ledger["reader"]) as moment:  # Lab 6: the portal's figures at one moment
        end = live["ts"].max().ceil("h").to_pydatetime()
        page_24h = sum(r["tokens"] for r in portal_data.usage_series(moment, "hour", 24, end=end))
    assert page_24h == int(usage.tokens_per_hour(live, 24)["tokens"].sum()) > 0
    check = rollups.rollup_equals_ledger(ledger["reader"])  # Lab 6: the rollups equal the ledger
    assert check["mismatches"] == 0 and check["ledger"]["requests"] == ledger["rows"]
    for table in reader.TABLES:
        with psycopg.connect(ledger["reader"]) as conn:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0


REFUSED = {
    "insert into the ledger": "INSERT INTO ledger (ts, user_name, team, application, model, prompt_tokens, "
                              "completion_tokens, latency_ms, status, cost_usd) VALUES (now(), 'x', 'x', 'x', 'x', "
                              "1, 1, 1, 'success', 0)",
    "update a rollup": "UPDATE usage_hourly SET cost_usd = 0",
    "delete from a rollup": "DELETE FROM usage_daily",
    "truncate the ledger": "TRUNCATE usage_monthly",
    "drop the ledger": "DROP TABLE ledger",
    "alter a rollup": "ALTER TABLE usage_hourly ADD COLUMN x int",
    "create a table": "CREATE TABLE public.mine (x int)",
    "read the keys": "SELECT key_hash FROM applications",
    "read the portal tokens": "SELECT portal_token_hash FROM users",
    "read the plans": "SELECT * FROM plans",
    "read the admin scopes": "SELECT key_hash FROM admin_scopes",
    "read a partition directly": "SELECT * FROM ledger_default",
    "read the refusal counts": "SELECT * FROM refusals_hourly",
    "grant itself more": "GRANT SELECT ON applications TO maas_reader",
    "make itself a role": "CREATE ROLE sneaky",
}


@pytest.mark.parametrize("what", list(REFUSED))
def test_the_reader_is_refused_writes_ddl_and_every_other_table(ledger, what):
    with psycopg.connect(ledger["reader"], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(REFUSED[what])


def test_the_reader_needs_its_password_and_the_ledger_is_untouched(ledger):
    wrong = ledger["reader"].replace("password=", "password=x")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong).close()
    with psycopg.connect(ledger["owner"]) as conn:  # nothing the refused statements tried happened
        assert conn.execute("SELECT count(*) FROM ledger").fetchone()[0] == ledger["rows"]
        assert conn.execute("SELECT to_regclass('public.mine')").fetchone()[0] is None


def test_the_role_is_granted_by_the_migrations_and_they_refuse_clearly_where_it_cannot_be_made(ledger):
    """On the cluster the gateway migrates as the unprivileged database owner: without the start script's role
    migration 7 stops and says what to do (the init container retries after the PostgreSQL pod restarted)."""
    server = ledger["server"]
    name = f"owner_{secrets.token_hex(4)}"
    admin = server.dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{name}'")  # like sclorg's POSTGRESQL_USER: no CREATEROLE
        conn.execute(f'CREATE DATABASE "{name}" OWNER {name}')
        conn.execute(f"ALTER ROLE {reader.ROLE} RENAME TO {reader.ROLE}_away")  # a cluster before the start script
    owner_dsn = f"host={server.host} port={server.port} user={name} password={name} dbname={name}"
    try:
        with pytest.raises(psycopg.errors.RaiseException, match="restart the PostgreSQL pod"):
            migrations.migrate(owner_dsn)
        with psycopg.connect(owner_dsn) as conn:
            assert max(migrations.applied_versions(conn)) == 6  # each migration is one transaction
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {reader.ROLE}_away RENAME TO {reader.ROLE}")
    assert 7 in migrations.migrate(owner_dsn)  # the role exists again: granted by the database's owner
    with psycopg.connect(admin.replace("dbname=postgres", f"dbname={name}")) as conn:
        granted = {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.role_table_grants WHERE grantee = %s "
            "AND privilege_type = 'SELECT'", (reader.ROLE,))}
        other = {row[0] for row in conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = %s", (reader.ROLE,))}
    assert granted == set(reader.TABLES) and other == {"SELECT"}
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}"')
        conn.execute(f"DROP ROLE {name}")
