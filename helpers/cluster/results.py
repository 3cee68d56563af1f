"""A lab's figures on a cluster: one ConfigMap per attendee in their own namespace, one key per lab.

``helpers.results.record_figures`` writes each lab's figures to a JSON file, and on a cluster platform also
here, so that ``instructor report`` (on the instructor's machine) counts the labs an attendee has done and
``instructor reset`` deletes them by the workshop's labels (component ``results``). The object is
server-side applied with one field manager per lab: running a lab twice updates its own key of the one
ConfigMap, and never removes another lab's key. The attendee Role of ``helpers.cluster.access``
(``own_namespace_rules``) allows exactly the calls made here.
"""
from __future__ import annotations

import json

from ..errors import ClusterForbiddenError
from . import client as kube
from .labels import workshop_labels

NAME = "maas-results"  # the attendee Role names it
COMPONENT = "results"
MANAGER_PREFIX = "maas-workshop-results-"


def field_manager(lab: str) -> str:
    """One field manager per lab: its apply owns its own key only."""
    return f"{MANAGER_PREFIX}{lab}"


def results_config_map(lab: str, figures: dict, namespace: str, owner: str) -> dict:
    """The ConfigMap as applied for one lab: the workshop's labels and that lab's figures as JSON."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": namespace, "labels": workshop_labels(owner, COMPONENT)},
            "data": {lab: json.dumps(figures, sort_keys=True)}}


def record(connection: kube.Connection, namespace: str, owner: str, lab: str, figures: dict) -> dict:
    """Server-side apply the lab's figures to the results ConfigMap of ``namespace``; returns the applied object."""
    body = results_config_map(lab, figures, namespace, owner)
    try:
        with kube.call("patch (server-side apply; `create` the first time)", f"configmaps/{NAME}", namespace):
            applied = connection.core.patch_namespaced_config_map(
                NAME, namespace, body, field_manager=field_manager(lab), force=True,
                _content_type="application/apply-patch+yaml")
    except ClusterForbiddenError as exc:
        raise ClusterForbiddenError(
            f"{lab}'s figures were saved in this workbench but not where the instructor reads them: {exc}. "
            f"The attendee Role in your namespace allows it (`python -m helpers instructor provision --names "
            f"{owner}` makes it); check that MAAS_NAMESPACE ({namespace}) is your own namespace and MAAS_OWNER "
            f"({owner}) your name.") from exc
    return connection.api_client.sanitize_for_serialization(applied)
