"""Reach a Kubernetes API server with the official client; explain its refusals.

Nothing here talks to a cluster at import time: ``connect`` does, once, and
every API call goes through ``call`` so a 403 names the verb and the resource,
a 404 on a custom resource says which CRD is missing, and so on.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import (
    ClusterAPIMissingError, ClusterConfigError, ClusterError, ClusterForbiddenError, HardwareProfileMissingError,
    QuotaExceededError,
)

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

# CRDs the platform needs, by plural.group, with the component that installs them.
REQUIRED_APIS = {
    "inferenceservices.serving.kserve.io": "KServe (OpenShift AI: the single-model serving platform)",
    "servingruntimes.serving.kserve.io": "KServe (OpenShift AI: the single-model serving platform)",
}


def kubeconfig_path(explicit: str = "") -> Path | None:
    """The kubeconfig to use: MAAS_KUBECONFIG, else $KUBECONFIG (first entry), else ~/.kube/config; None if absent."""
    candidates = [explicit] if explicit else []
    candidates += [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates.append(str(Path.home() / ".kube" / "config"))
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.is_file():
            return path
    return None


def in_cluster() -> bool:
    """True inside a pod with a service account (a workbench in the cluster)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_TOKEN.is_file()


def no_cluster_reason(explicit: str = "") -> str | None:
    """Why no cluster can be reached (None when a kubeconfig or in-cluster config exists)."""
    if kubeconfig_path(explicit) or in_cluster():
        return None
    where = f"MAAS_KUBECONFIG={explicit} does not exist; " if explicit else ""
    return (f"no Kubernetes configuration: {where}no $KUBECONFIG, no ~/.kube/config and not running in a pod. "
            "Log in first (`oc login --token=... --server=...` for OpenShift AI, `kind export kubeconfig "
            "--name maas` for kind) or set MAAS_KUBECONFIG to your kubeconfig file; "
            "or use the local platform (PLATFORM=local).")


@dataclass(frozen=True)
class Connection:
    """An API client and the typed APIs the platform uses."""

    api_client: object
    core: object  # CoreV1Api
    custom: object  # CustomObjectsApi
    extensions: object  # ApiextensionsV1Api
    context: str  # kubeconfig context, or "in-cluster"
    apps: object = None  # AppsV1Api (the shared gateway's Deployment)


def connect(kubeconfig: str = "") -> Connection:
    """Load the kubeconfig (or in-cluster config); a clear error when there is none."""
    reason = no_cluster_reason(kubeconfig)
    if reason:
        raise ClusterConfigError(reason)
    from kubernetes import client, config

    path = kubeconfig_path(kubeconfig)
    api_client = client.ApiClient(configuration=client.Configuration())
    try:
        if path:
            context = config.list_kube_config_contexts(str(path))[1].get("name", "?")
            config.load_kube_config(config_file=str(path), client_configuration=api_client.configuration)
        else:
            context = "in-cluster"
            config.load_incluster_config(client_configuration=api_client.configuration)
    except (config.ConfigException, OSError, ValueError, TypeError) as exc:
        raise ClusterConfigError(f"cannot use the Kubernetes configuration {path or 'in-cluster'}: {exc}. "
                                 "Log in again (`oc login`) or fix MAAS_KUBECONFIG.") from exc
    return Connection(api_client, client.CoreV1Api(api_client), client.CustomObjectsApi(api_client),
                      client.ApiextensionsV1Api(api_client), context, client.AppsV1Api(api_client))


def explain(status: int, body: str, verb: str, resource: str, namespace: str | None) -> ClusterError:
    """The error for an API refusal: what was refused and what to do next."""
    where = f" in namespace {namespace!r}" if namespace else ""
    if status == 401:
        return ClusterConfigError(f"the API server did not accept your credentials ({verb} {resource}{where}); "
                                  "your token may have expired: log in again (`oc login`).")
    if status == 403 and "exceeded quota" in body:
        return QuotaExceededError(
            f"the quota of namespace {namespace!r} refused to {verb} {resource}: {body[:300]}. Undeploy something "
            f"first (platform.undeploy), or ask the platform team for more; the shared models behind the gateway "
            "count against no attendee's quota.")
    if status == 403:
        return ClusterForbiddenError(
            f"forbidden: you may not {verb} {resource}{where}. Ask the platform team for a role that allows it "
            f"(e.g. `oc adm policy add-role-to-user edit <you> -n {namespace or '<namespace>'}`), or use your own "
            f"attendee namespace (MAAS_NAMESPACE). API server said: {body[:300]}")
    if status == 400 and "hardware" in body.lower() and "profile" in body.lower():
        return HardwareProfileMissingError(
            f"the hardware profile was refused while trying to {verb} {resource}{where}: {body[:300]}. "
            "Create it (manifests/overlays/openshift/hardware-profile-nvidia-l4.yaml) or set MAAS_HARDWARE_PROFILE "
            "to one that exists (`oc get hardwareprofiles -A`).")
    return ClusterError(f"the API server refused to {verb} {resource}{where} (HTTP {status}): {body[:500]}")


def object_not_found(body: str, name: str) -> bool:
    """True when a 404 says the object is absent (``... "name" not found``), not its whole kind (no CRD)."""
    return f'\\"{name}\\" not found' in body or f'"{name}" not found' in body


@contextmanager
def call(verb: str, resource: str, namespace: str | None = None) -> Iterator[None]:
    """Run API calls, turning ``ApiException`` into an error that says what to do."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        raise explain(exc.status or 0, str(exc.body or exc.reason), verb, resource, namespace) from exc
    except HTTPError as exc:
        raise ClusterError(f"cannot reach the API server to {verb} {resource}: {exc}. "
                           "Is the cluster up and your VPN connected?") from exc


def missing_apis(connection: Connection, required: dict[str, str] = REQUIRED_APIS) -> list[str]:
    """The required CRDs that are not installed (cluster-scoped read; a 403 means we cannot tell)."""
    from kubernetes.client.exceptions import ApiException

    missing = []
    for name in required:
        try:
            connection.extensions.read_custom_resource_definition(name)
        except ApiException as exc:
            if exc.status == 404:
                missing.append(name)
            elif exc.status != 403:  # attendees may not read CRDs: then the first real call tells
                raise explain(exc.status or 0, str(exc.body), "get", f"customresourcedefinitions/{name}", None) from exc
    return missing


def require_apis(connection: Connection, required: dict[str, str] = REQUIRED_APIS) -> None:
    missing = missing_apis(connection, required)
    if missing:
        needs = sorted({required[name] for name in missing})
        raise ClusterAPIMissingError(
            f"the cluster has no {', '.join(missing)}: install {'; '.join(needs)} first "
            "(kind: scripts/kind-setup.sh; OpenShift AI: enable KServe in the DataScienceCluster).")
