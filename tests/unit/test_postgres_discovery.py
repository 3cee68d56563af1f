"""PostgreSQL's server programs are found where each distribution puts them (not on PATH on Debian/Ubuntu)."""
from pathlib import Path

import pytest

from helpers.errors import SetupError
from helpers.gateway.postgres import find_bin_dir


def _install(root: Path, *majors: str) -> None:
    """Lay out /usr/lib/postgresql/<major>/bin as the distribution's package does."""
    for major in majors:
        bin_dir = root / major / "bin"
        bin_dir.mkdir(parents=True)
        for program in ("initdb", "pg_ctl", "postgres"):
            (bin_dir / program).write_text("#!/bin/sh\n")
            (bin_dir / program).chmod(0o755)


@pytest.mark.parametrize("layout, expected", [
    (("15",), "15"),              # Debian 12
    (("17",), "17"),              # Debian 13
    (("16",), "16"),              # Ubuntu 24.04
    (("15", "16", "9"), "16"),    # an upgrade left several: the newest, compared as numbers
])
def test_the_newest_version_under_the_debian_root_is_found(tmp_path, layout, expected):
    _install(tmp_path, *layout)
    assert find_bin_dir(tmp_path, search_path="") == tmp_path / expected / "bin"


def test_an_existing_cluster_keeps_the_major_version_it_was_made_with(tmp_path):
    _install(tmp_path, "15", "17")
    assert find_bin_dir(tmp_path, search_path="", major="15") == tmp_path / "15" / "bin"


def test_path_is_the_fallback_elsewhere(tmp_path):
    _install(tmp_path / "usr-local", "x")  # a folder named x is not a version
    on_path = tmp_path / "usr-local" / "x" / "bin"
    assert find_bin_dir(tmp_path / "nothing-here", search_path=str(on_path)) == on_path


def test_missing_postgresql_says_which_package(tmp_path):
    with pytest.raises(SetupError, match="Install the Debian/Ubuntu package postgresql"):
        find_bin_dir(tmp_path, search_path=str(tmp_path))


def test_a_dsn_shows_no_password_where_python_prints_it():
    from helpers.gateway.postgres import Postgres

    dsn = Postgres(host="127.0.0.1", port=5432, user="maas", password="s3cret-Pw", pid=1).dsn("ledger")
    assert "s3cret-Pw" in str(dsn) and "s3cret-Pw" not in repr(dsn) and "password=***" in repr(dsn)
    assert "s3cret-Pw" not in repr({"dsn": dsn}) and "s3cret-Pw" not in repr((dsn,))  # inside containers too


def test_a_uri_dsn_hides_its_password_too():
    from helpers.cluster.ledger import local_dsn

    dsn = local_dsn("postgresql://maas:s3cret-Pw@maas-postgres:5432/maas", 40001)
    assert "s3cret-Pw" in str(dsn) and "127.0.0.1:40001" in str(dsn)
    assert "s3cret-Pw" not in repr(dsn) and "maas:***@127.0.0.1" in repr(dsn)
