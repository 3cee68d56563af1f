"""A private PostgreSQL cluster for the gateway's keys and usage ledger.

One cluster per workshop state folder, listening on 127.0.0.1 on a generated
port, with a generated password (scram-sha-256). The data folder survives
restarts: stop and start keep every key and every ledger row.

PostgreSQL refuses to run as root. When the workshop runs as root (containers,
CI), the server runs as the ``postgres`` user and its data lives under
``/var/tmp/maas-workshop/`` (a folder that user can reach), one per state folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .. import processes
from ..errors import PlatformError, SetupError
from ..secretfiles import write_secret
from ..settings import get_settings

DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")  # Debian and Ubuntu: /usr/lib/postgresql/<major>/bin, not on PATH
SERVICE_USER = "postgres"  # who runs the server when we are root
DATABASE = "maas"


class Dsn(str):
    """A connection string whose repr hides the password: a notebook's last line or a failing test's
    arguments show ``password=***``; psycopg gets the whole string."""

    def __repr__(self) -> str:
        hidden = re.sub(r"password=\S+", "password=***", str(self))
        return repr(re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", hidden))  # postgresql://user:password@host


@dataclass(frozen=True)
class Postgres:
    """A running cluster: where it listens and how to log in."""

    host: str
    port: int
    user: str
    password: str
    pid: int

    def dsn(self, database: str = DATABASE) -> Dsn:
        return Dsn(f"host={self.host} port={self.port} user={self.user} password={self.password} dbname={database}")

    def __repr__(self) -> str:  # never print the password
        return f"Postgres(host={self.host!r}, port={self.port}, user={self.user!r}, password='***', pid={self.pid})"


def _as_root() -> bool:
    return os.geteuid() == 0


def cluster_dir() -> Path:
    """Where the cluster's data, socket and password live."""
    state = get_settings().state_dir.resolve()
    if not _as_root():
        return state / "postgres"
    digest = hashlib.sha256(str(state).encode()).hexdigest()[:12]
    return Path("/var/tmp/maas-workshop") / f"postgres-{digest}"


def find_bin_dir(root: Path = DEBIAN_PG_ROOT, search_path: str | None = None, major: str | None = None) -> Path:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl, postgres).

    Debian 12 (15), Debian 13 (17) and Ubuntu 24.04 (16) keep them in ``root/<major>/bin``;
    the newest major wins, or ``major`` (the version a cluster was made with) when given.
    Elsewhere they are on PATH.
    """
    versions = sorted((d for d in root.glob("*/bin") if (d / "initdb").is_file() and d.parent.name.isdigit()),
                      key=lambda d: int(d.parent.name), reverse=True)
    matching = [d for d in versions if major is None or d.parent.name == major]
    if matching:
        return matching[0]
    on_path = shutil.which("initdb", path=search_path)
    if on_path:
        return Path(on_path).parent
    raise SetupError(f"PostgreSQL's server programs (initdb, pg_ctl) are not in {root}/<version>/bin nor on PATH. "
                     "Install the Debian/Ubuntu package postgresql (make setup does), or put the folder holding "
                     "initdb on PATH.")


def _binary(name: str) -> str:
    version_file = cluster_dir() / "data" / "PG_VERSION"  # an existing cluster needs its own major version
    major = version_file.read_text().strip() if version_file.is_file() else None
    return str(find_bin_dir(major=major) / name)


def _as_service_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--", *command] if _as_root() else command


def _give_to_service_user(path: Path) -> None:
    if _as_root():
        shutil.chown(path, SERVICE_USER, SERVICE_USER)


def _credentials(folder: Path) -> dict:
    """The superuser's name and password, generated once per cluster."""
    path = folder / "credentials.json"  # kept beside the data, so the two never disagree
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _give_to_service_user(folder)
        write_secret(path, json.dumps({"user": "maas", "password": secrets.token_urlsafe(18)}))
    return json.loads(path.read_text())


def _initdb(folder: Path, credentials: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _give_to_service_user(folder)
    pwfile = folder / "pwfile"
    write_secret(pwfile, credentials["password"] + "\n")
    _give_to_service_user(pwfile)  # initdb runs as that user; the file stays 0600
    run = subprocess.run(
        _as_service_user([_binary("initdb"), "-D", str(folder / "data"), "-U", credentials["user"],
                          f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"]),
        capture_output=True, text=True)
    pwfile.unlink()
    if run.returncode != 0:
        raise SetupError(f"initdb failed in {folder}:\n{run.stderr[-2000:]}")


def _record_path() -> Path:
    return get_settings().run_dir / "postgres.json"


def running_postgres() -> Postgres | None:
    """The cluster this workshop started, if it still runs."""
    record = processes.live_record(_record_path())
    if record is None:
        return None
    credentials = _credentials(cluster_dir())
    return Postgres(record["host"], record["port"], credentials["user"], credentials["password"], record["pid"])


def start_postgres(port: int | None = None, timeout_s: float = 60.0) -> Postgres:
    """Start the cluster (or return the running one) and create the database."""
    existing = running_postgres()
    if existing:
        return existing
    settings = get_settings()
    folder = cluster_dir()
    credentials = _credentials(folder)
    if not (folder / "data" / "PG_VERSION").is_file():
        _initdb(folder, credentials)
    port = processes.sticky_port(folder / "port", port, settings.host)  # the gateway finds it where it was
    log = settings.logs_dir / "postgres.log"
    command = [_binary("postgres"), "-D", str(folder / "data"), "-p", str(port), "-k", str(folder),
               "-c", f"listen_addresses={settings.host}", "-c", "max_connections=200",
               "-c", "shared_buffers=128MB", "-c", "fsync=on"]
    handle = processes.start(_as_service_user(command), log)
    postgres = Postgres(settings.host, port, credentials["user"], credentials["password"], handle.pid)
    processes.write_record(_record_path(), handle, host=settings.host, port=port)
    _wait_ready(postgres, handle, log, timeout_s)
    _create_database(postgres, DATABASE)
    return postgres


def _wait_ready(postgres: Postgres, handle: processes.ProcessHandle, log: Path, timeout_s: float) -> None:
    def accepts_connections() -> bool:
        try:
            with psycopg.connect(postgres.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    outcome = processes.wait_until(handle, accepts_connections, timeout_s, interval_s=0.3)
    if outcome == "ready":
        return
    if outcome == "exited":
        raise PlatformError(f"PostgreSQL exited while starting.\n{processes.describe_log(log)}")
    stop_postgres()
    raise PlatformError(f"PostgreSQL did not accept connections within {timeout_s:.0f} s.\n"
                        f"{processes.describe_log(log)}")


def _create_database(postgres: Postgres, name: str) -> None:
    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def create_database(name: str) -> str:
    """Create another database in the running cluster (e.g. for a synthetic ledger); its DSN."""
    postgres = running_postgres()
    if postgres is None:
        raise PlatformError("PostgreSQL is not running; start the platform: python -m helpers up")
    _create_database(postgres, name)
    return postgres.dsn(name)


def database_dsn(server_dsn: str, name: str) -> Dsn:
    """The same server and login as ``server_dsn`` (a key=value string or a URI), another database."""
    return Dsn(psycopg.conninfo.make_conninfo(server_dsn, dbname=name))


def recreate_database(server_dsn: str, name: str) -> Dsn:
    """Drop database ``name`` (if there) and create it anew on the server ``server_dsn`` logs into; its DSN.
    For a scratch server (the cluster's, Lab 6's synthetic month); never the gateway's database."""
    if name in (DATABASE, "postgres"):
        raise PlatformError(f"refusing to recreate {name!r}: pick another name for a scratch database")
    with psycopg.connect(database_dsn(server_dsn, "postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_dsn(server_dsn, name)


def stop_postgres(timeout_s: float = 30.0) -> bool:
    """Fast shutdown (clients disconnected, data flushed); True when it was running."""
    was_running = processes.live_record(_record_path()) is not None
    if was_running:
        subprocess.run(_as_service_user([_binary("pg_ctl"), "stop", "-D", str(cluster_dir() / "data"),
                                         "-m", "fast", "-w", "-t", str(int(timeout_s))]),
                       capture_output=True, text=True)
    processes.stop_recorded(_record_path())  # whatever pg_ctl left of the group
    return was_running


def dsn() -> str:
    """The DSN of the gateway's database in the running cluster."""
    postgres = running_postgres()
    if postgres is None:
        raise PlatformError("PostgreSQL is not running; start the platform: python -m helpers up")
    return postgres.dsn()


def drop_database(name: str) -> bool:
    """Drop a database of the running cluster (never the gateway's own); True if it existed."""
    if name in (DATABASE, "postgres"):
        raise PlatformError(f"refusing to drop {name!r}: the gateway needs it")
    postgres = running_postgres()
    if postgres is None:
        return False
    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as conn:
        existed = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    return existed
