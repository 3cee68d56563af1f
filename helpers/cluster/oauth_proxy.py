"""OpenShift: the portal's pages behind OpenShift's oauth-proxy, the only way into the gateway's pod.

What the openshift overlay adds to the base gateway (``overlays/openshift/gateway-oauth-proxy.yaml``, one
patch file):

- an ``oauth-proxy`` sidecar (``--provider=openshift``) listening on ``PROXY_PORT``; it signs people in with
  OpenShift and passes ``X-Forwarded-User`` / ``X-Forwarded-Email`` upstream, replacing what a client sent
  (openshift/oauth-proxy, oauthproxy.go). API calls (application keys, the portal's JSON API with portal
  tokens, the health check) skip its sign-in (``--skip-auth-regex``) and reach the gateway unchanged: the
  gateway never reads those headers there.
- the gateway listens on 127.0.0.1 only, so nothing outside the pod reaches it but through the proxy; the
  Service's ``http`` port, the Route through it, the probes and the NetworkPolicy point at the proxy's port.
- ``MAAS_PORTAL_AUTH=openshift-oauth-proxy`` (the gateway trusts the headers), and the admins: members of
  the OpenShift group ``ADMIN_GROUP``, which the gateway reads (a ClusterRole allowing ``get`` on that one
  group, ``gateway-admin-group-reader.yaml``).
- the proxy's cookie secret from an uncommitted ``overlays/openshift/secrets.env`` (written with the
  gateway's own, ``manifests.write_secrets_env``).
"""
from __future__ import annotations

import secrets
from pathlib import Path

from ..secretfiles import write_secret
from .labels import SHARED_OWNER, workshop_labels

# Pinned by digest as a public Dockerfile pins it (jiridanek/rhoai-in-kind,
# components/origin-oauth-proxy/Dockerfile: FROM quay.io/openshift/origin-oauth-proxy@sha256:1ece77...).
OAUTH_PROXY_IMAGE = ("quay.io/openshift/origin-oauth-proxy"
                     "@sha256:1ece77d14a685ef2397c3a327844eea45ded00c95471e9e333e35ef3860b1895")
PROXY_PORT = 8080  # plain HTTP inside the cluster: the Route terminates TLS (edge)
PROXY_PORT_NAME = "proxy"
ADMIN_GROUP = "maas-admins"
SECRET_NAME = "maas-oauth-proxy"
SECRETS_FILE = "overlays/openshift/secrets.env"
PATCH_FILE = "gateway-oauth-proxy.yaml"
RBAC_FILE = "gateway-admin-group-reader.yaml"
# What reaches the gateway without an OpenShift sign-in: the OpenAI API (application keys), the portal's JSON
# API (portal tokens), the health check. Everything else (the pages, /portal/ui) needs the sign-in.
SKIP_AUTH = r"^/(v1/|openai/|engines/|chat/|completions|embeddings|models|health/|portal/(applications|usage|" \
            r"refusals|me|plans|plan-requests|admin)(/|$))"


def _proxy_container(gateway_port: int) -> dict:
    return {
        "name": "oauth-proxy", "image": OAUTH_PROXY_IMAGE,
        "args": ["--provider=openshift", f"--http-address=:{PROXY_PORT}", "--https-address=",
                 f"--upstream=http://127.0.0.1:{gateway_port}", "--openshift-service-account=maas-gateway",
                 "--cookie-secret-file=/etc/oauth-proxy/cookie_secret", "--cookie-secure=true",
                 "--cookie-samesite=strict", "--pass-user-headers=true", "--pass-basic-auth=false",
                 "--pass-access-token=false", "--email-domain=*", "--skip-provider-button",
                 f"--skip-auth-regex={SKIP_AUTH}", "--request-logging=false"],
        "ports": [{"name": PROXY_PORT_NAME, "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": "oauth-proxy-secret", "mountPath": "/etc/oauth-proxy", "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    }


def patches(ns: str, gateway_command: list[str], gateway_port: int) -> list[dict]:
    """The strategic-merge patches of the base gateway's Deployment, Service, ServiceAccount and NetworkPolicy."""
    command = [("127.0.0.1" if previous == "--host" else arg) for previous, arg in
               zip([""] + gateway_command[:-1], gateway_command)]
    probe = {"httpGet": {"path": "/health/liveliness", "port": PROXY_PORT_NAME}}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "maas-gateway", "namespace": ns},
        "spec": {"template": {"spec": {
            "automountServiceAccountToken": True,  # the proxy's OAuth client and the admin group's read
            "containers": [
                {"name": "gateway", "command": command,
                 "env": [{"name": "MAAS_PORTAL_AUTH", "value": "openshift-oauth-proxy"},
                         {"name": "MAAS_PORTAL_ADMIN_GROUP", "value": ADMIN_GROUP}],
                 "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
                 "livenessProbe": {**probe, "initialDelaySeconds": 60, "periodSeconds": 20}},
                _proxy_container(gateway_port)],
            "volumes": [{"name": "oauth-proxy-secret", "secret": {"secretName": SECRET_NAME}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "maas-gateway", "namespace": ns},
               "spec": {"ports": [{"name": "http", "port": gateway_port, "targetPort": PROXY_PORT_NAME,
                                   "protocol": "TCP"}]}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        "name": "maas-gateway", "namespace": ns, "annotations": {
            "serviceaccounts.openshift.io/oauth-redirectreference.primary":
                '{"kind":"OAuthRedirectReference","apiVersion":"v1","reference":{"kind":"Route","name":"maas-gateway"}}'}},
        "automountServiceAccountToken": True}
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "maas-gateway-from-anywhere", "namespace": ns},
              "spec": {"ingress": [{"ports": [{"port": PROXY_PORT, "protocol": "TCP"}]}]}}
    return [deployment, service, account, policy]


def admin_group_reader(ns: str) -> list[dict]:
    """The gateway's service account may read the one OpenShift group whose members are the portal's admins."""
    labels = workshop_labels(SHARED_OWNER, "gateway")
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "maas-gateway-admin-group-reader", "labels": labels},
            "rules": [{"apiGroups": ["user.openshift.io"], "resources": ["groups"], "resourceNames": [ADMIN_GROUP],
                       "verbs": ["get"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "maas-gateway-admin-group-reader", "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "maas-gateway-admin-group-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "maas-gateway", "namespace": ns}]}
    return [role, binding]


def kustomization_fields(ns: str) -> dict:
    """What the openshift overlay's kustomization adds: the patch file, the RBAC and the cookie secret."""
    return {"resources": [RBAC_FILE], "patches": [{"path": PATCH_FILE}],
            "secretGenerator": [{"name": SECRET_NAME, "namespace": ns, "envs": ["secrets.env"]}],
            "generatorOptions": {"labels": workshop_labels(SHARED_OWNER, "gateway")}}


def write_cookie_secret(root: Path, overwrite: bool = False) -> Path:
    """``overlays/openshift/secrets.env`` (mode 600, gitignored) with the proxy's cookie secret, unless it exists."""
    path = root / SECRETS_FILE
    if path.is_file() and not overwrite:
        return path
    return write_secret(path, f"cookie_secret={secrets.token_urlsafe(24)}\n")
