"""A room on a cluster: one namespace per attendee, found, reset and removed by the workshop's labels only.

What ``reset`` may delete is decided here, on objects as the API returns them (plain dicts): an
object is the workshop's when it carries ``app.kubernetes.io/part-of=maas-workshop`` and its owner
label, asked of the API server by label selector *and* checked again here (a selector typo, an old
server or a proxy that drops it must not widen a delete). Never touched by ``reset``: the shared
models (``maas-workshop/shared=true``), the attendee's namespace, RBAC and quota (component
``namespace``/``attendee``), and objects another object owns (KServe's predictor Deployment and
Service go with their InferenceService). ``teardown`` removes the shared models, the attendees' RoleBindings
in the gateway's namespace (by the same labels: component ``attendee``, an attendee as owner) and the
attendee namespaces. ``provision`` also hands each attendee their scoped admin key for the gateway (a Secret in
their namespace, ``helpers.cluster.credentials``). Talking to the API goes through ``RoomAPI`` (the
``kubernetes`` dynamic client in ``KubeRoomAPI``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from . import credentials
from .labels import COMPONENT, OWNER, PART_OF, SHARED, SHARED_OWNER, WORKSHOP, label_value, owner_selector
from . import scratch
from .manifests import SCRATCH_COMPONENT, SCRATCH_SECRET, attendee_objects

FIELD_MANAGER = "maas-workshop-instructor"


@dataclass(frozen=True)
class Kind:
    """A kind of object the room holds, as the API names it."""

    api_version: str
    kind: str
    namespaced: bool = True


INFERENCE_SERVICE = Kind("serving.kserve.io/v1beta1", "InferenceService")
DEPLOYMENT = Kind("apps/v1", "Deployment")
SERVICE = Kind("v1", "Service")
CONFIG_MAP = Kind("v1", "ConfigMap")  # results the labs record on a cluster (component=results)
SECRET = Kind("v1", "Secret")
NAMESPACE = Kind("v1", "Namespace", namespaced=False)
NODE = Kind("v1", "Node", namespaced=False)
SERVING_RUNTIME = Kind("serving.kserve.io/v1alpha1", "ServingRuntime")
ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "RoleBinding")

RESET_KINDS = (INFERENCE_SERVICE, DEPLOYMENT, SERVICE, CONFIG_MAP, SECRET)  # what an attendee makes while working
KEPT_COMPONENTS = {"namespace", "attendee", SCRATCH_COMPONENT}  # the namespace, its RBAC and quota, Lab 6's scratch DB


class RoomAPI(Protocol):
    """The calls the room needs; objects in and out as the API's JSON (dicts)."""

    def list(self, kind: Kind, namespace: str | None, selector: str) -> list[dict]: ...

    def delete(self, kind: Kind, namespace: str | None, name: str) -> None: ...

    def apply(self, obj: dict) -> dict: ...


def namespace_of(attendee: str) -> str:
    return f"maas-{label_value(attendee)}"


def labels(obj: dict) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def is_workshops(obj: dict, owner: str | None = None) -> bool:
    """Part of the workshop (and of this owner when given), by its own labels."""
    own = labels(obj)
    return own.get(PART_OF) == WORKSHOP and (owner is None or own.get(OWNER) == label_value(owner))


def resettable(obj: dict, attendee: str) -> bool:
    """What ``reset`` of this attendee may delete (see the module's docstring)."""
    own = labels(obj)
    return (is_workshops(obj, attendee) and own.get(SHARED) != "true" and own.get(COMPONENT) not in KEPT_COMPONENTS
            and not obj.get("metadata", {}).get("ownerReferences"))


@dataclass(frozen=True)
class Target:
    """One object a plan would delete."""

    kind: Kind
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def reset_plan(api: RoomAPI, attendee: str) -> list[Target]:
    """Exactly what ``reset --user`` deletes in the attendee's namespace, by kind then name."""
    ns = namespace_of(attendee)
    targets = []
    for kind in RESET_KINDS:
        for obj in api.list(kind, ns, owner_selector(attendee)):
            if resettable(obj, attendee) and obj["metadata"].get("namespace", ns) == ns:
                targets.append(Target(kind, ns, obj["metadata"]["name"]))
    return targets


def attendee_namespaces(api: RoomAPI) -> list[str]:
    """The room's attendee namespaces (labelled by the workshop, not the platform team's)."""
    found = api.list(NAMESPACE, None, f"{owner_selector()},{COMPONENT}=namespace")
    return sorted(o["metadata"]["name"] for o in found
                  if is_workshops(o) and labels(o).get(COMPONENT) == "namespace" and labels(o).get(OWNER) != SHARED_OWNER)


def shared_models(api: RoomAPI, namespace: str) -> list[dict]:
    """The shared InferenceServices behind the gateway (``maas-workshop/shared=true``)."""
    found = api.list(INFERENCE_SERVICE, namespace, f"{owner_selector()},{SHARED}=true")
    return [o for o in found if is_workshops(o) and labels(o).get(SHARED) == "true"]


def attendee_bindings(api: RoomAPI, gateway_namespace: str) -> list[dict]:
    """The attendees' RoleBindings in the gateway's namespace: component ``attendee``, owned by an attendee (not
    the platform team's Role they bind to, nothing unlabelled)."""
    found = api.list(ROLE_BINDING, gateway_namespace, f"{owner_selector()},{COMPONENT}=attendee")
    return [o for o in found if is_workshops(o) and labels(o).get(COMPONENT) == "attendee"
            and labels(o).get(OWNER) not in (None, SHARED_OWNER)
            and o["metadata"].get("namespace", gateway_namespace) == gateway_namespace]


def teardown_plan(api: RoomAPI, gateway_namespace: str) -> list[Target]:
    """What ``teardown`` deletes: the shared models (the GPUs stop costing), the attendees' access to the gateway's
    namespace, then the attendee namespaces."""
    models = [Target(INFERENCE_SERVICE, gateway_namespace, o["metadata"]["name"])
              for o in shared_models(api, gateway_namespace)]
    bindings = [Target(ROLE_BINDING, gateway_namespace, o["metadata"]["name"])
                for o in attendee_bindings(api, gateway_namespace)]
    return models + bindings + [Target(NAMESPACE, None, ns) for ns in attendee_namespaces(api)]


def room_attendees(api: RoomAPI) -> list[str]:
    """The attendees of the room, as their namespaces' owner labels name them (their gateway scopes)."""
    found = api.list(NAMESPACE, None, f"{owner_selector()},{COMPONENT}=namespace")
    return sorted(labels(o)[OWNER] for o in found if o["metadata"]["name"] in attendee_namespaces(api))


def delete(api: RoomAPI, targets: list[Target]) -> None:
    for target in targets:
        api.delete(target.kind, target.namespace, target.name)


def provision(api: RoomAPI, attendee: str, gateway_namespace: str = "maas-models") -> list[str]:
    """The attendee's namespace, RoleBinding and ResourceQuota, their scratch PostgreSQL (and its Secret, made once),
    and in the gateway's namespace the attendee Role and its binding (what Labs 5 and 6 read there), server-side
    applied (idempotent)."""
    applied = []
    for obj in attendee_objects(attendee, namespace_of(attendee), gateway_ns=gateway_namespace):
        api.apply(obj)
        applied.append(f"{obj['kind']} {obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']}")
    return applied + scratch_secret(api, attendee)


def scratch_secret(api: RoomAPI, attendee: str) -> list[str]:
    """The scratch PostgreSQL's Secret (a generated password), unless it is there already (run twice: the same)."""
    ns = namespace_of(attendee)
    present = [o for o in api.list(SECRET, ns, f"{owner_selector(attendee)},{COMPONENT}={SCRATCH_COMPONENT}")
               if o["metadata"]["name"] == SCRATCH_SECRET and is_workshops(o, attendee)]
    if present:
        return []
    api.apply(scratch.secret_object(attendee, ns))
    return [f"Secret {ns}/{SCRATCH_SECRET}"]


def scope_of(attendee: str) -> str:
    """The attendee's admin scope in the gateway: their owner label (what teardown finds them by)."""
    return label_value(attendee)


def hand_over_admin_key(api: RoomAPI, attendee: str, issue: Callable[[str], str]) -> list[str]:
    """Put the attendee's scoped admin key (``issue(scope)``: the gateway's admin API) in a Secret of their
    namespace, unless it is there already (run twice: no new key)."""
    ns = namespace_of(attendee)
    present = [o for o in api.list(SECRET, ns, f"{owner_selector(attendee)},{COMPONENT}=attendee")
               if o["metadata"]["name"] == credentials.SECRET and is_workshops(o, attendee)]
    if present:
        return []
    api.apply(credentials.secret_object(scope_of(attendee), ns, issue(scope_of(attendee))))
    return [f"Secret {ns}/{credentials.SECRET}"]


class KubeRoomAPI:
    """``RoomAPI`` through the official client's dynamic client (written to the real API; no cluster here)."""

    def __init__(self, connection) -> None:
        from kubernetes.dynamic import DynamicClient

        self.dynamic = DynamicClient(connection.api_client)

    def _resource(self, kind: Kind):
        return self.dynamic.resources.get(api_version=kind.api_version, kind=kind.kind)

    def list(self, kind: Kind, namespace: str | None, selector: str) -> list[dict]:
        from . import client as kube

        with kube.call("list", kind.kind, namespace):
            found = self._resource(kind).get(namespace=namespace, label_selector=selector)
        return found.to_dict().get("items", [])

    def delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        from . import client as kube

        try:
            self._resource(kind).delete(name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status != 404:  # already gone: what we wanted
                raise kube.explain(exc.status or 0, str(exc.body), "delete", kind.kind, namespace) from exc

    def apply(self, obj: dict) -> dict:
        from . import client as kube

        kind = Kind(obj["apiVersion"], obj["kind"], "namespace" in obj["metadata"])
        with kube.call("apply", kind.kind, obj["metadata"].get("namespace")):
            applied = self.dynamic.server_side_apply(self._resource(kind), body=obj, name=obj["metadata"]["name"],
                                                     namespace=obj["metadata"].get("namespace"),
                                                     field_manager=FIELD_MANAGER)
        return applied.to_dict()
