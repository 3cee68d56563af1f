"""The attendee's RBAC covers exactly what the helpers do, offline: in the gateway's namespace and in their own.

The calls are read from the helpers' source (``helpers.cluster.access.ATTENDEE_MODULES`` for the gateway's
namespace, ``OWN_NAMESPACE_MODULES`` for the attendee's): every use of the kubernetes client's typed APIs
(``connection.core.read_namespaced_secret``...) becomes the verb and resource the API server authorizes it as (a
server-side apply, a patch with ``_content_type="application/apply-patch+yaml"``, is a ``patch`` and, the first
time, a ``create``). The rules are read from the Roles that ``kubectl kustomize manifests/attendee`` renders (the
committed template). A call without a rule, or a rule without a call, fails. No cluster involved.
"""
from __future__ import annotations

import ast
import re

import pytest

from helpers.cluster import access, credentials, manifests, validate
from helpers.cluster import gateway as cluster_gateway
from helpers.cluster import results as cluster_results
from helpers.settings import get_settings

ROOT = get_settings().root
API_GROUPS = {"core": "", "apps": "apps", "rbac": "rbac.authorization.k8s.io", "batch": "batch"}
VERBS = {"read": "get", "list": "list", "create": "create", "patch": "patch", "replace": "update", "delete": "delete"}
TYPED = re.compile(r"^(read|list|create|patch|replace|delete)_namespaced_([a-z_]+?)(_status)?$")
STREAM = re.compile(r"^connect_(?:get|post)_namespaced_pod_(portforward|exec|attach)$")
CUSTOM = re.compile(r"^(get|list|create|patch|replace|delete)_namespaced_custom_object$")
APPLY_PATCH = "application/apply-patch+yaml"

Access = tuple[str, str, str]  # (API group, resource[/subresource], verb)


def _plural(kind: str) -> str:
    word = kind.replace("_", "")
    return word + ("es" if word.endswith("s") else "s")


def _call_of(tree: ast.AST, attribute: ast.Attribute) -> ast.Call | None:
    return next((node for node in ast.walk(tree) if isinstance(node, ast.Call) and node.func is attribute), None)


def _is_apply(call: ast.Call | None) -> bool:
    """A patch sent as a server-side apply (its content type written out as a literal)."""
    return call is not None and any(k.arg == "_content_type" and isinstance(k.value, ast.Constant)
                                    and k.value.value == APPLY_PATCH for k in call.keywords)


def api_calls(source: str, where: str = "<source>") -> set[Access]:
    """What the API server authorizes for every ``connection.<api>.<method>`` named in this source."""
    tree = ast.parse(source)
    found: set[Access] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, (ast.Name, ast.Attribute))
                and (getattr(node.value.value, "id", None) or getattr(node.value.value, "attr", None)) == "connection"):
            continue
        api, method = node.value.attr, node.attr
        if api == "api_client":
            continue  # serialisation, no request
        if match := STREAM.match(method):  # a WebSocket upgrade: `get`, and `create` since Kubernetes 1.35
            found |= {("", f"pods/{match.group(1)}", "get"), ("", f"pods/{match.group(1)}", "create")}
        elif api == "custom" and (match := CUSTOM.match(method)):
            call = _call_of(tree, node)
            args = [a.value if isinstance(a, ast.Constant) else None for a in (call.args if call else [])]
            if len(args) < 4 or args[0] is None or args[3] is None:
                raise AssertionError(f"{where}:{node.lineno}: {method} without literal group and plural: "
                                     "cannot tell which rule it needs")
            found.add((args[0], args[3], VERBS.get(match.group(1), match.group(1))))
        elif api in API_GROUPS and (match := TYPED.match(method)):
            subresource = "/status" if match.group(3) else ""
            resource = (API_GROUPS[api], _plural(match.group(2)) + subresource)
            found.add((*resource, VERBS[match.group(1)]))
            if match.group(1) == "patch" and _is_apply(_call_of(tree, node)):
                found.add((*resource, "create"))  # a server-side apply creates what is not there yet
        else:
            raise AssertionError(f"{where}:{node.lineno}: connection.{api}.{method}: unknown to this test; teach it "
                                 "the verb and resource")
    return found


def helpers_calls(modules: tuple[str, ...] = access.ATTENDEE_MODULES) -> set[Access]:
    calls: set[Access] = set()
    for module in modules:
        calls |= api_calls((ROOT / module).read_text(), module)
    return calls


def own_namespace_calls() -> set[Access]:
    return helpers_calls(access.OWN_NAMESPACE_MODULES)


def role_grants(role: dict) -> set[Access]:
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


@pytest.fixture(scope="module")
def attendee_template() -> list[dict]:
    return validate.kustomize_build(ROOT / "manifests" / "attendee")


def _role(objects: list[dict], namespace: str = "maas-models") -> dict:
    """The Role of the template in that namespace (the gateway's, or the attendee's own: maas-attendee)."""
    return next(o for o in objects if o["kind"] == "Role" and o["metadata"]["namespace"] == namespace)


def test_the_calls_are_read_from_the_helpers_source():
    calls = helpers_calls()
    assert ("apps", "deployments", "get") in calls and ("", "secrets", "get") in calls
    assert {("", "pods/portforward", "get"), ("", "pods/portforward", "create")} <= calls  # Lab 6's ledger
    assert ("route.openshift.io", "routes", "get") in calls  # a custom object: group and plural from its arguments


def test_the_attendee_role_allows_exactly_what_the_helpers_do(attendee_template):
    role = _role(attendee_template)
    assert role["metadata"]["namespace"] == "maas-models"
    assert role_grants(role) == helpers_calls()


def test_a_new_call_without_a_rule_or_a_rule_without_a_call_is_caught(attendee_template):
    grants = role_grants(_role(attendee_template))
    new_call = helpers_calls() | api_calls("connection.core.read_namespaced_config_map(name, namespace)")
    assert new_call - grants == {("", "configmaps", "get")}
    wider = {**_role(attendee_template), "rules": _role(attendee_template)["rules"]
             + [access.rule("", "secrets", ["list"])]}
    assert role_grants(wider) - helpers_calls() == {("", "secrets", "list")}
    with pytest.raises(AssertionError, match="unknown to this test"):
        api_calls("connection.core.proxy_service(name)")


def test_every_rule_names_its_objects_and_those_are_the_objects_the_manifests_make(attendee_template, tmp_path):
    import shutil

    rules = _role(attendee_template)["rules"]
    assert all(r.get("resourceNames") for r in rules if r["verbs"] != ["list"])  # only a list is not by name
    named = {name for r in rules for name in r.get("resourceNames", [])}
    assert named == {cluster_gateway.NAME, manifests.READER_SECRET, manifests.POSTGRES_POD}
    assert manifests.SECRET_NAME not in named  # the gateway's admin key and the database owner's password
    copy_root = tmp_path / "manifests"  # the base as applied, with throwaway credentials
    shutil.copytree(ROOT / "manifests", copy_root, ignore=shutil.ignore_patterns("secrets.env"))
    manifests.write_secrets_env(copy_root)
    base = {(o["kind"], o["metadata"]["name"]) for o in validate.kustomize_build(copy_root / "base")}
    assert ("Secret", manifests.READER_SECRET) in base  # a stable name, no hash: the Role can name it
    assert ("StatefulSet", manifests.POSTGRES_POD.rsplit("-", 1)[0]) in base  # its one pod is maas-postgres-0
    assert ("Deployment", cluster_gateway.NAME) in base


ATTENDEE_AND_WORKBENCH = [  # a workbench's pod runs as a service account of the attendee's namespace
    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "attendee"},
    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts:maas-attendee"}]


def test_the_attendee_is_bound_to_that_role_only_in_the_gateways_namespace(attendee_template):
    bindings = [o for o in attendee_template if o["kind"] == "RoleBinding"]
    gateway_binding = next(b for b in bindings if b["metadata"]["namespace"] == "maas-models")
    assert gateway_binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                          "name": manifests.ATTENDEE_ROLE}
    assert gateway_binding["subjects"] == ATTENDEE_AND_WORKBENCH
    admin = next(b for b in bindings if b["roleRef"]["name"] == "admin")
    assert admin["subjects"] == ATTENDEE_AND_WORKBENCH[:1]  # `admin` stays the attendee's alone
    assert not [o for o in attendee_template if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


# -- the attendee's own namespace: the labs' figures (helpers.cluster.results) ---------------------------

def test_the_results_calls_are_read_from_the_source_and_an_apply_needs_create_too():
    assert own_namespace_calls() == {("", "configmaps", "patch"), ("", "configmaps", "create"),  # the figures
                                     ("", "secrets", "get"),  # the scoped admin key; the scratch server's DSN
                                     ("", "pods", "get"), ("", "pods/portforward", "get"),  # Lab 6's scratch
                                     ("", "pods/portforward", "create")}  # PostgreSQL, from a laptop
    merge = api_calls("connection.core.patch_namespaced_config_map(name, ns, body)")  # a plain patch
    assert merge == {("", "configmaps", "patch")}
    applied = api_calls('connection.core.patch_namespaced_config_map(name, ns, body, '
                        '_content_type="application/apply-patch+yaml")')
    assert applied == {("", "configmaps", "patch"), ("", "configmaps", "create")}


def test_the_attendee_role_in_their_namespace_allows_exactly_what_the_results_do(attendee_template):
    role = _role(attendee_template, "maas-attendee")
    assert role["metadata"]["name"] == manifests.RESULTS_ROLE
    assert role_grants(role) == own_namespace_calls()
    patch = next(r for r in role["rules"] if r["verbs"] == ["patch"])
    assert patch["resourceNames"] == [cluster_results.NAME]  # the one ConfigMap; a create cannot be named
    secret = next(r for r in role["rules"] if r["resources"] == ["secrets"])
    assert secret["verbs"] == ["get"] and secret["resourceNames"] == [credentials.SECRET, manifests.SCRATCH_SECRET]
    pod_rules = [r for r in role["rules"] if r["resources"][0].startswith("pods")]
    assert pod_rules and all(r["resourceNames"] == [manifests.SCRATCH_POD] for r in pod_rules)  # that pod alone
    made = {(o["kind"], o["metadata"]["name"]) for o in attendee_template if o["metadata"].get("namespace") == "maas-attendee"}
    assert {("StatefulSet", manifests.SCRATCH_POD.rsplit("-", 1)[0]), ("Service", manifests.SCRATCH_NAME)} <= made
    binding = next(o for o in attendee_template if o["kind"] == "RoleBinding"
                   and o["roleRef"]["name"] == manifests.RESULTS_ROLE)
    assert binding["metadata"]["namespace"] == "maas-attendee"
    assert binding["subjects"] == ATTENDEE_AND_WORKBENCH


def test_a_new_results_call_without_a_rule_or_a_wider_rule_is_caught(attendee_template):
    grants = role_grants(_role(attendee_template, "maas-attendee"))
    read_back = own_namespace_calls() | api_calls("connection.core.read_namespaced_config_map(name, namespace)")
    assert read_back - grants == {("", "configmaps", "get")}  # reading the figures back would need a rule
    deleting = own_namespace_calls() | api_calls("connection.core.delete_namespaced_config_map(name, namespace)")
    assert deleting - grants == {("", "configmaps", "delete")}
    wider = {"rules": _role(attendee_template, "maas-attendee")["rules"] + [access.rule("", "configmaps", ["get"])]}
    assert role_grants(wider) - own_namespace_calls() == {("", "configmaps", "get")}
