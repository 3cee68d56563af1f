"""Lab 6's synthetic month on a cluster platform, loaded through the scratch port-forward into a real PostgreSQL.

Everything but the API server is real: ``synthetic.load_into_postgres`` picks the scratch server of the attendee's
namespace, reads its DSN from the Secret (SHAPED LIKE THE REAL API, NOT CAPTURED FROM A CLUSTER), opens the
port-forward of ``helpers.cluster.ledger`` on 127.0.0.1, and its tunnel is a TCP connection to this machine's
PostgreSQL standing in for the pod. The month lands there, rolled up, and reads back whole.
"""
from __future__ import annotations

import base64

import pytest

from helpers import rollups, synthetic, usage
from helpers.cluster import client as kube
from helpers.cluster import scratch
from helpers.gateway import postgres
from tests.unit.test_cluster_ledger import tunnels  # noqa: F401 (fixture)
from tests.unit.test_cluster_scratch import NS, ScratchApi, platform

pytestmark = pytest.mark.integration
DATABASE = "scratch_test"


@pytest.fixture
def pod_server(monkeypatch):
    """This machine's PostgreSQL as the scratch pod, its superuser's DSN in the Secret as the instructor writes it."""
    was_running = postgres.running_postgres() is not None
    server = postgres.start_postgres()
    dsn = (f"postgresql://{server.user}:{server.password}@maas-scratch-postgres.{NS}.svc.cluster.local:5432/"
           "postgres")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": scratch.SCRATCH_SECRET, "namespace": NS},
              "data": {scratch.DSN_KEY: base64.b64encode(dsn.encode()).decode()}}
    monkeypatch.setattr("tests.unit.test_cluster_scratch.SECRET", secret)
    monkeypatch.setattr(kube, "in_cluster", lambda: False)
    monkeypatch.setattr(scratch, "_forwards", {})
    yield server
    for forward in scratch._forwards.values():
        forward.close()
    postgres.drop_database(DATABASE)
    if not was_running:
        postgres.stop_postgres()


def test_the_month_loads_through_the_port_forward_into_the_scratch_server(pod_server, tunnels):  # noqa: F811
    month = synthetic.synthetic_month(synthetic.CompanyProfile(employees=200, teams=4), days=3, seed=5)
    dsn = synthetic.load_into_postgres(month, DATABASE, platform=platform(ScratchApi(pod_port=pod_server.port)))
    assert "host=127.0.0.1" in dsn and f"port={pod_server.port}" not in dsn  # the forward's port, not the pod's
    assert pod_server.password not in repr(dsn)
    assert len(usage.read_ledger(dsn)) == len(month) > 1000
    check = rollups.rollup_equals_ledger(dsn)
    assert check["mismatches"] == 0 and check["ledger"]["requests"] == len(month)
    assert len(tunnels) >= 2  # the check at start, then one tunnel per connection
