"""A lab's figures on a cluster (helpers.cluster.results), offline: the request on the wire, the answers.

No apiserver can run here. The calls go through the real ``kubernetes`` client down to its HTTP pool, which is
replaced by ``Wire``: it records each request and answers with a response shaped like the API server's (a
ConfigMap after a server-side apply, with its managedFields; a 403 ``Status``), written from the API's shapes,
not captured from a cluster. What the instructor then reads is checked with the room's own label logic.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from helpers import instructor, results
from helpers.cluster import client as kube
from helpers.cluster import labels
from helpers.cluster import results as cluster_results
from helpers.cluster import room as cluster_room
from helpers.errors import ClusterConfigError, ClusterForbiddenError
from helpers.platform import KubernetesPlatform

HOST = "https://api.room.example.com:6443"


def applied_config_map(body: dict, manager: str) -> dict:
    """The API server's answer to a server-side apply of ``body`` (shape of a v1 ConfigMap it returns)."""
    meta = body["metadata"]
    return {"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {**meta, "uid": "5b0c1f3e-2d4a-4f7b-9a51-0e8f6c2d7a10", "resourceVersion": "91234",
                         "creationTimestamp": "2026-11-24T09:12:03Z",
                         "managedFields": [{"manager": manager, "operation": "Apply", "apiVersion": "v1",
                                            "time": "2026-11-24T09:12:03Z", "fieldsType": "FieldsV1",
                                            "fieldsV1": {"f:data": {f"f:{k}": {} for k in body["data"]},
                                                         "f:metadata": {"f:labels": {
                                                             f"f:{k}": {} for k in meta["labels"]}}}}]},
            "data": body["data"]}


def forbidden(user: str, namespace: str) -> dict:
    """The API server's 403 for a patch RBAC refuses (a v1 Status)."""
    message = (f'configmaps "maas-results" is forbidden: User "{user}" cannot patch resource "configmaps" in API '
               f'group "" in the namespace "{namespace}"')
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Forbidden", "details": {"name": "maas-results", "kind": "configmaps"}, "code": 403}


class Wire:
    """Stands in for urllib3's pool: records every request, answers as the API server would."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict] = []

    def request(self, method, url, body=None, timeout=None, headers=None, preload_content=True, **_):
        parts = urlsplit(url)
        sent = {"method": method, "path": parts.path, "query": parse_qs(parts.query), "headers": dict(headers or {}),
                "body": json.loads(body) if body else None}
        self.requests.append(sent)
        if self.status == 403:
            namespace = parts.path.split("/")[4]
            answer = forbidden("alice", namespace)
        else:
            answer = applied_config_map(sent["body"], sent["query"]["fieldManager"][0])
        return urllib3.HTTPResponse(body=json.dumps(answer).encode(), status=self.status,
                                    headers={"Content-Type": "application/json"}, preload_content=False,
                                    reason="Forbidden" if self.status == 403 else "OK")

    def clear(self) -> None:
        pass


def connection(wire: Wire) -> kube.Connection:
    """A real client whose HTTP goes to ``wire`` (no network)."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = HOST
    api_client = client.ApiClient(configuration=configuration)
    api_client.rest_client.pool_manager = wire
    return kube.Connection(api_client, client.CoreV1Api(api_client), client.CustomObjectsApi(api_client),
                           client.ApiextensionsV1Api(api_client), "fixture", client.AppsV1Api(api_client))


@pytest.fixture
def on_cluster(tmp_path, monkeypatch):
    """A notebook in alice's workbench: PLATFORM=openshift, her namespace and owner; the wire instead of a cluster."""
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MAAS_RESULTS_DIR", raising=False)
    monkeypatch.setenv("PLATFORM", "openshift")
    monkeypatch.delenv("MAAS_PLATFORM", raising=False)
    monkeypatch.setenv("MAAS_NAMESPACE", "maas-alice")
    monkeypatch.setenv("MAAS_OWNER", "alice")
    wire = Wire()
    monkeypatch.setattr(kube, "connect", lambda kubeconfig="": connection(wire))
    return wire


def test_the_config_map_carries_the_workshop_labels_the_report_and_reset_select_by():
    obj = cluster_results.results_config_map("lab04", {"image_mb": 12.5}, "maas-alice", "Alice")
    assert obj["metadata"]["name"] == "maas-results" and obj["metadata"]["namespace"] == "maas-alice"
    assert obj["metadata"]["labels"] == {labels.PART_OF: "maas-workshop", labels.MANAGED_BY: "maas-workshop-helpers",
                                         labels.OWNER: "alice", labels.COMPONENT: "results"}
    assert obj["data"] == {"lab04": '{"image_mb": 12.5}'}
    assert cluster_room.is_workshops(obj, "alice") and cluster_room.resettable(obj, "alice")  # reset deletes it
    assert not cluster_room.resettable(obj, "bob")


def test_an_apply_is_one_patch_of_one_config_map_with_one_field_manager_per_lab(on_cluster):
    results.record_figures("lab04", image_mb=12.5)
    results.record_figures("lab04", image_mb=12.5, deploy_by_uri_seconds=41.0)  # the lab run again
    results.record_figures("lab05", gateway_models=["parasol-tiny"])
    first, again, other = on_cluster.requests
    assert [r["method"] for r in on_cluster.requests] == ["PATCH"] * 3
    assert {r["path"] for r in on_cluster.requests} == {"/api/v1/namespaces/maas-alice/configmaps/maas-results"}
    assert first["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert first["query"] == {"fieldManager": ["maas-workshop-results-lab04"], "force": ["true"]}
    assert again["query"] == first["query"]  # same manager: the server updates the key it owns
    assert other["query"]["fieldManager"] == ["maas-workshop-results-lab05"]  # lab04's key is not its to remove
    assert json.loads(again["body"]["data"]["lab04"]) == {"image_mb": 12.5, "deploy_by_uri_seconds": 41.0}
    assert list(other["body"]["data"]) == ["lab05"]
    assert all(r["body"]["metadata"]["labels"][labels.OWNER] == "alice" for r in on_cluster.requests)


def test_what_the_api_returns_is_what_the_instructor_report_counts(on_cluster):
    applied = cluster_results.record(kube.connect(), "maas-alice", "alice", "lab04", {"image_mb": 12.5})
    assert applied["metadata"]["managedFields"][0]["manager"] == "maas-workshop-results-lab04"

    class Listed:  # the room's API answering a list with the ConfigMap as the server returned it
        def list(self, kind, namespace, selector):
            assert (kind, namespace) == (cluster_room.CONFIG_MAP, "maas-alice")
            assert selector == "app.kubernetes.io/part-of=maas-workshop,maas-workshop/owner=alice," \
                               "app.kubernetes.io/component=results"
            return [applied]

    assert instructor.labs_done("alice", instructor.Room(KubernetesPlatform(), Listed())) == ["lab04"]


def test_forbidden_says_which_verb_on_which_resource_and_what_to_do(on_cluster):
    on_cluster.status = 403
    with pytest.raises(ClusterForbiddenError) as refused:
        results.record_figures("lab04", image_mb=12.5)
    message = str(refused.value)
    assert "you may not patch (server-side apply; `create` the first time) configmaps/maas-results" in message
    assert "in namespace 'maas-alice'" in message and "instructor provision --names alice" in message
    assert "saved in this workbench" in message and results.read_figures("lab04") == {"image_mb": 12.5}


def test_without_a_kubeconfig_the_error_says_how_to_log_in(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MAAS_RESULTS_DIR", raising=False)
    monkeypatch.setenv("PLATFORM", "kubernetes")
    monkeypatch.setenv("MAAS_KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ClusterConfigError, match="no Kubernetes configuration.*oc login"):
        results.record_figures("lab00", held_out_accuracy=0.9)
    assert results.read_figures("lab00") == {"held_out_accuracy": 0.9}  # the local file is written first


def test_locally_nothing_goes_to_a_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("MAAS_RESULTS_DIR", raising=False)
    monkeypatch.setenv("PLATFORM", "local")
    monkeypatch.delenv("MAAS_PLATFORM", raising=False)

    def no_cluster(*args, **kwargs):
        raise AssertionError("the local platform must not reach a cluster")

    monkeypatch.setattr(cluster_results, "record", no_cluster)
    monkeypatch.setattr(kube, "connect", no_cluster)
    assert results.record_figures("lab04", image_mb=12.5) == {"image_mb": 12.5}
    assert (tmp_path / "results" / "lab04.json").is_file()
