"""Lab 4 on a cluster platform: ModelCars go to the registry the cluster pulls from (MAAS_CLUSTER_REGISTRY),
with a login from a file or the environment, and are deployed by digest as the nodes reach them.

The last test pushes for real: the workshop's local registry (docker-registry with htpasswd) plays the
cluster's registry, skopeo pushes to it with the login taken from the environment.
"""
from __future__ import annotations

import base64
import json
import subprocess

import pytest

from helpers import registry
from helpers.errors import SetupError
from helpers.platform import KubernetesPlatform, LocalPlatform, OpenShiftPlatform

PUSH = "default-route-openshift-image-registry.apps.example.com/maas-ada"
PULL = "image-registry.openshift-image-registry.svc:5000/maas-ada"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def no_login(tmp_path, monkeypatch):
    """No registry setting, no login anywhere (no podman/docker auth files either)."""
    for name in ("MAAS_CLUSTER_REGISTRY", "MAAS_CLUSTER_REGISTRY_PULL", "MAAS_CLUSTER_REGISTRY_AUTHFILE",
                 registry.USERNAME_ENV, registry.PASSWORD_ENV, "REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def test_without_a_cluster_registry_the_error_says_what_to_set(no_login):
    with pytest.raises(SetupError, match="(?s)MAAS_CLUSTER_REGISTRY is not set.*MAAS_CLUSTER_REGISTRY_PULL.*"
                                         "MAAS_CLUSTER_REGISTRY_AUTHFILE.*MAAS_CLUSTER_REGISTRY_USERNAME"):
        OpenShiftPlatform().modelcar_registry()


def test_a_registry_without_a_login_says_where_to_put_one(no_login, monkeypatch):
    monkeypatch.setenv("MAAS_CLUSTER_REGISTRY", PUSH)
    with pytest.raises(SetupError, match="(?s)no login for the cluster registry.*oc registry login --to=FILE"):
        KubernetesPlatform().modelcar_registry()
    monkeypatch.setenv("MAAS_CLUSTER_REGISTRY_AUTHFILE", str(no_login / "missing.json"))
    with pytest.raises(SetupError, match="does not exist: write it with `oc registry login --to="):
        KubernetesPlatform().modelcar_registry()


def test_a_login_from_the_environment_lands_in_a_private_auth_file(no_login, monkeypatch):
    monkeypatch.setenv("MAAS_CLUSTER_REGISTRY", PUSH + "/")
    monkeypatch.setenv("MAAS_CLUSTER_REGISTRY_PULL", PULL)
    monkeypatch.setenv(registry.USERNAME_ENV, "ada")
    monkeypatch.setenv(registry.PASSWORD_ENV, "sha256~not-a-real-token")
    hub = OpenShiftPlatform().modelcar_registry()
    assert (hub.address, hub.pull_address, hub.username) == (PUSH, PULL, "ada")
    assert registry.auth_file(hub) == hub.authfile and hub.authfile.stat().st_mode & 0o777 == 0o600
    auths = json.loads(hub.authfile.read_text())["auths"]
    assert base64.b64decode(auths[PUSH.split("/")[0]]["auth"]).decode() == "ada:sha256~not-a-real-token"
    assert "not-a-real-token" not in repr(hub)
    reference = hub.reference("modelcars/parasol-tiny", "v1")  # OpenShift's registry: namespace/name only
    assert reference == f"{PUSH}/modelcars-parasol-tiny:v1"
    assert hub.modelcar_uri(reference, DIGEST) == f"oci://{PULL}/modelcars-parasol-tiny@{DIGEST}"


def test_a_login_from_a_file_is_used_as_is(no_login, monkeypatch):
    authfile = no_login / "auth.json"
    host = PUSH.split("/")[0]
    authfile.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(b"ada:tok").decode()}}}))
    monkeypatch.setenv("MAAS_CLUSTER_REGISTRY", PUSH)
    monkeypatch.setenv("MAAS_CLUSTER_REGISTRY_AUTHFILE", str(authfile))
    hub = KubernetesPlatform().modelcar_registry()
    assert hub.authfile == authfile and hub.username == "ada"
    assert hub.modelcar_uri(hub.reference("modelcars/x", "v1"), DIGEST) == f"oci://{PUSH}/modelcars-x@{DIGEST}"


def test_the_local_uri_is_unchanged():
    hub = registry.Registry("127.0.0.1:5000", registry.RegistryCredentials("workshop", "pw"), 1)
    reference = hub.reference("modelcars/parasol-tiny", "v1")
    assert hub.modelcar_uri(reference, DIGEST) == "oci://127.0.0.1:5000/modelcars/parasol-tiny:v1"
    assert LocalPlatform.modelcar_registry is not KubernetesPlatform.modelcar_registry


@pytest.mark.integration
def test_publishing_pushes_to_the_cluster_registry_with_the_environment_login(tmp_path, monkeypatch, request):
    """A real push: the local registry stands in for the cluster's; the login comes from the environment."""
    started_here = registry.running_registry() is None
    local = registry.start_registry()
    if started_here:
        request.addfinalizer(registry.stop_registry)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    monkeypatch.setenv("MAAS_CLUSTER_REGISTRY", f"{local.address}/maas-ada")
    monkeypatch.setenv("MAAS_CLUSTER_REGISTRY_PULL", "image-registry.openshift-image-registry.svc:5000/maas-ada")
    monkeypatch.delenv("MAAS_CLUSTER_REGISTRY_AUTHFILE", raising=False)
    monkeypatch.setenv(registry.USERNAME_ENV, local.credentials.username)
    monkeypatch.setenv(registry.PASSWORD_ENV, local.credentials.password)
    uri = KubernetesPlatform().modelcar_for(model, "parasol-tiny-w4a16")
    prefix = "oci://image-registry.openshift-image-registry.svc:5000/maas-ada/modelcars-parasol-tiny-w4a16@sha256:"
    assert uri.startswith(prefix)
    hub = KubernetesPlatform().modelcar_registry()
    pushed = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--authfile", str(hub.authfile),
                             f"docker://{local.address}/maas-ada/modelcars-parasol-tiny-w4a16@{uri.split('@')[1]}"],
                            capture_output=True, text=True, timeout=60)
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["Digest"] == uri.split("@")[1]
