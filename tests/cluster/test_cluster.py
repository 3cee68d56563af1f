"""Against a real cluster: skipped without a kubeconfig (or in-cluster config).

    MAAS_KUBECONFIG=~/.kube/config PLATFORM=openshift pytest -m cluster tests/cluster

PLATFORM chooses kubernetes or openshift (default kubernetes); MAAS_NAMESPACE the namespace (it needs
the vLLM ServingRuntime: `kubectl apply -k manifests/` or OpenShift AI's template). On kind set
MAAS_GPUS_PER_MODEL=0: the tiny model from kind's registry on the CPU image. The gateway test needs the
manifests applied (the shared gateway in MAAS_GATEWAY_NAMESPACE) and the right to read its Secret; the Lab 4
test needs MAAS_CLUSTER_REGISTRY and its login (README, "On a cluster").
None of these tests has run yet: no apiserver could run where they were written.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import requests

from helpers.cluster import client as kube
from helpers.settings import get_settings

_REASON = kube.no_cluster_reason(get_settings().kubeconfig)
pytestmark = [pytest.mark.cluster, pytest.mark.skipif(_REASON is not None, reason=f"no cluster: {_REASON}")]

KIND = os.environ.get("PLATFORM") if os.environ.get("PLATFORM") in ("kubernetes", "openshift") else "kubernetes"


@pytest.fixture(scope="module")
def platform():
    from helpers.platform import Platform

    chosen = Platform.create(KIND)
    chosen.preflight()
    return chosen


@pytest.fixture(scope="module")
def model() -> str:
    return "parasol-tiny" if get_settings().gpus_per_model == 0 else "granite-3-1-2b-instruct"


def test_server_side_dry_run_accepts_every_overlay(tmp_path):
    """The API server (and its admission webhooks) accept what the offline checks accepted."""
    from helpers.cluster import manifests, validate

    overlay = "overlays/openshift" if KIND == "openshift" else ("overlays/kind" if get_settings().gpus_per_model == 0
                                                                else ".")
    copy = tmp_path / "manifests"
    shutil.copytree(get_settings().root / "manifests", copy, ignore=shutil.ignore_patterns("*.env"))
    manifests.write_secrets_env(copy)
    result = subprocess.run([str(validate.kubectl()), "apply", "--dry-run=server", "-k", str(copy / overlay)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_deploy_answer_list_usage_undeploy(platform, model):
    name = "maas-cluster-test"
    try:
        deployment = platform.deploy(model, name, max_model_len=2048)
        assert deployment.ready
        assert name in [d.name for d in platform.list()]
        if kube.in_cluster():
            reply = requests.get(f"{deployment.endpoint}/models", timeout=30)
            assert reply.json()["data"][0]["id"] == name
        usage = platform.usage(name)
        assert usage.memory_bytes > 0
    finally:
        platform.undeploy(name)
    assert name not in [d.name for d in platform.list()]


def test_the_notebooks_reach_the_shared_gateway(platform):
    """maas.start_gateway on a cluster platform: the manifests' gateway, ready, reachable from here, its admin
    key read from its Secret and accepted; stop_gateway leaves it running."""
    from helpers import maas
    from helpers.cluster import gateway as cluster_gateway

    gateway = maas.start_gateway(platform)
    assert gateway.models, "the gateway routes no model: apply the manifests from manifests/models.yaml"
    assert requests.get(gateway.url.removesuffix("/v1") + "/health/liveliness", timeout=30).ok
    assert isinstance(maas.room_admin(gateway).top_consumers(1), list)  # the admin key from the Secret works
    assert maas.stop_gateway(gateway) == []
    still = cluster_gateway.read_deployment(platform.connection, gateway.namespace, platform.openshift)
    assert cluster_gateway.deployment_state(still)[0], "stop_gateway must not touch the shared gateway"


def test_lab6_reads_the_ledger_through_a_port_forward_read_only(platform):
    """maas.ledger_dsn on a cluster platform: a port-forward to the gateway's PostgreSQL pod, the ledger readable,
    a write refused; Lab 5's helpers name the gateway's own models."""
    import psycopg

    from helpers import maas

    with psycopg.connect(maas.ledger_dsn(platform), connect_timeout=30) as conn:
        assert conn.execute("SELECT count(*) FROM ledger").fetchone()[0] >= 0
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE maas_should_not_exist (x int)")
    with psycopg.connect(maas.ledger_dsn(platform), connect_timeout=30) as conn:  # as maas_reader: no keys
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT key_hash FROM applications")
    assert set(maas.lab_models(platform, count=1)) <= set(maas.start_gateway(platform).models)


@pytest.mark.skipif(not get_settings().cluster_registry, reason="MAAS_CLUSTER_REGISTRY is not set (Lab 4's push)")
def test_lab4_pushes_to_the_cluster_registry_and_deploys_by_digest(platform, tmp_path):
    """Lab 4's path on a cluster: the tiny ModelCar pushed to MAAS_CLUSTER_REGISTRY, deployed as the nodes reach it."""
    from helpers import modelcar
    from helpers.models import ensure_tiny_model

    hub = platform.modelcar_registry()
    image = modelcar.build_modelcar(ensure_tiny_model(show_progress=False).path, tmp_path / "layout", "v1")
    reference = hub.reference("modelcars/parasol-tiny", "cluster-test")
    digest = modelcar.push(image, reference, hub.authfile)
    assert digest == image.digest
    name = "maas-cluster-modelcar"
    try:
        deployment = platform.deploy(hub.modelcar_uri(reference, digest), name, max_model_len=2048)
        assert deployment.ready and deployment.details["digest"] == image.digest
    finally:
        platform.undeploy(name)


def test_run_labs_on_the_cluster_writes_the_summary(tmp_path):
    out = tmp_path / "labs"
    result = subprocess.run([sys.executable, "-m", "helpers", "run-labs", "--platform", KIND, "--labs", "0",
                             "--out", str(out)], capture_output=True, text=True, timeout=3600,
                            cwd=get_settings().root)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["platform"] == KIND and summary["passed"], result.stdout[-3000:]
