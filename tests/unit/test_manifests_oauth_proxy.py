"""OpenShift: the gateway's pod is reached only through the oauth-proxy's port, so the headers it sets can be
trusted (the portal's pages); the API paths skip its sign-in. Rendered offline with `kubectl kustomize`."""
from __future__ import annotations

import re
import shutil

import pytest

from helpers.cluster import manifests, oauth_proxy, validate
from helpers.settings import get_settings

ROOT = get_settings().root / "manifests"


@pytest.fixture(scope="module")
def overlays(tmp_path_factory) -> dict[str, list[dict]]:
    copy_root = tmp_path_factory.mktemp("m") / "manifests"
    shutil.copytree(ROOT, copy_root, ignore=shutil.ignore_patterns("secrets.env"))
    manifests.write_secrets_env(copy_root)
    return {overlay: validate.kustomize_build(copy_root / overlay) for overlay in ("overlays/openshift", ".")}


def _one(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_service_and_route_reach_the_gateway_only_through_the_proxy_port(overlays):
    objects = overlays["overlays/openshift"]
    pod = _one(objects, "Deployment", "maas-gateway")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"gateway", "oauth-proxy"}
    gateway, proxy = containers["gateway"], containers["oauth-proxy"]
    host = gateway["command"][gateway["command"].index("--host") + 1]
    assert host == "127.0.0.1"  # nothing outside the pod reaches the gateway's own port
    assert f"--upstream=http://127.0.0.1:{manifests.GATEWAY_PORT}" in proxy["args"]
    proxy_ports = {p["name"]: p["containerPort"] for p in proxy["ports"]}
    service = _one(objects, "Service", "maas-gateway")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [oauth_proxy.PROXY_PORT_NAME]
    assert proxy_ports[oauth_proxy.PROXY_PORT_NAME] == oauth_proxy.PROXY_PORT
    routes = [o for o in objects if o["kind"] == "Route"]
    assert [(r["spec"]["to"]["name"], r["spec"]["port"]["targetPort"]) for r in routes] == [("maas-gateway", "http")]
    assert {p["name"] for p in service["spec"]["ports"]} == {"http"}  # the Route's port: the proxy's
    policy = _one(objects, "NetworkPolicy", "maas-gateway-from-anywhere")
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [oauth_proxy.PROXY_PORT]
    for probe in ("readinessProbe", "livenessProbe"):
        assert gateway[probe]["httpGet"]["port"] == oauth_proxy.PROXY_PORT_NAME


def test_only_the_openshift_overlay_trusts_the_proxy_headers(overlays):
    def auth(objects: list[dict]) -> list[str]:
        pod = _one(objects, "Deployment", "maas-gateway")["spec"]["template"]["spec"]
        return [e.get("value") for c in pod["containers"] for e in c.get("env") or [] if e["name"] == "MAAS_PORTAL_AUTH"]

    assert auth(overlays["overlays/openshift"]) == ["openshift-oauth-proxy"]
    assert auth(overlays["."]) == []  # the base (any Kubernetes) keeps the portal's own sign-in


def test_the_proxy_is_pinned_and_its_secret_generated_not_committed(overlays):
    objects = overlays["overlays/openshift"]
    pod = _one(objects, "Deployment", "maas-gateway")["spec"]["template"]["spec"]
    proxy = next(c for c in pod["containers"] if c["name"] == "oauth-proxy")
    assert validate.image_problem(proxy["image"]) is None and "@sha256:" in proxy["image"]
    secret_name = next(v["secret"]["secretName"] for v in pod["volumes"] if v["name"] == "oauth-proxy-secret")
    secret = _one(objects, "Secret", secret_name)
    assert set(secret["data"]) == {"cookie_secret"}
    assert not (ROOT / oauth_proxy.SECRETS_FILE).exists() or \
        "secrets.env" in (ROOT / ".gitignore").read_text()
    role = _one(objects, "ClusterRole", "maas-gateway-admin-group-reader")
    assert role["rules"] == [{"apiGroups": ["user.openshift.io"], "resources": ["groups"],
                              "resourceNames": [oauth_proxy.ADMIN_GROUP], "verbs": ["get"]}]


@pytest.mark.parametrize("path,skips_sign_in", [
    ("/v1/chat/completions", True), ("/openai/deployments/m/chat/completions", True), ("/health/liveliness", True),
    ("/portal/applications", True), ("/portal/admin/users", True), ("/portal/me", True),
    ("/portal/ui/login", False), ("/portal/ui/admin", False), ("/portal/ui", False), ("/portal/uix", False),
    ("/", False)])
def test_the_pages_need_the_openshift_sign_in_and_the_api_does_not(path, skips_sign_in):
    assert bool(re.search(oauth_proxy.SKIP_AUTH, path)) is skips_sign_in
