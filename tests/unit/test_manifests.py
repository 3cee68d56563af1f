"""manifests/ offline: every overlay renders with `kubectl kustomize`, validates (built-in kinds strictly
against the Kubernetes schemas, KServe / OpenShift AI kinds against CRD-derived schemas), and breaks none
of the workshop's rules; planted mistakes are caught. No cluster is involved."""
from __future__ import annotations

import copy
import stat
from pathlib import Path

import pytest
import yaml

from helpers import kserve, quantize
from helpers.cluster import manifests, validate
from helpers.cluster.labels import SHARED
from helpers.settings import get_settings

ROOT = get_settings().root / "manifests"


@pytest.fixture(scope="module")
def results() -> dict[str, list[str]]:
    return validate.check_manifests(ROOT)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[dict]]:
    """Each overlay's objects, rendered from a copy with throwaway credentials."""
    import shutil

    copy_root = tmp_path_factory.mktemp("m") / "manifests"
    shutil.copytree(ROOT, copy_root, ignore=shutil.ignore_patterns("secrets.env"))
    manifests.write_secrets_env(copy_root)
    return {overlay: validate.kustomize_build(copy_root / overlay) for overlay in validate.OVERLAYS}


def _find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    return next(o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))


@pytest.mark.parametrize("overlay", validate.OVERLAYS)
def test_every_overlay_renders_and_validates(results, overlay):
    assert results[overlay] == []


def test_the_gitops_list_becomes_one_inference_service_per_model(rendered):
    listed = manifests.load_model_list()
    names = [m.name for m in listed.shared]
    assert {"granite-3-1-2b-instruct", "granite-3-1-8b-instruct-w4a16", "llama-3-1-8b-instruct"} <= set(names)
    for overlay in (".", "overlays/openshift"):
        assert sorted(o["metadata"]["name"] for o in rendered[overlay] if o["kind"] == "InferenceService") == \
            sorted(names)
    granite = _find(rendered["."], "InferenceService", "granite-3-1-2b-instruct")
    assert granite["spec"]["predictor"]["model"]["storageUri"] == kserve.DEFAULT_MODELCAR
    config = yaml.safe_load(_find(rendered["."], "ConfigMap")["data"]["litellm.yaml"])
    assert [m["model_name"] for m in config["model_list"]] == sorted(names)  # the gateway routes the same list


def test_openshift_uses_its_own_runtime_the_l4_profile_and_a_route_to_the_gateway_only(rendered):
    objects = rendered["overlays/openshift"]
    assert not [o for o in objects if o["kind"] == "ServingRuntime"]  # vllm-cuda-runtime comes from OpenShift AI
    for isvc in (o for o in objects if o["kind"] == "InferenceService"):
        assert isvc["spec"]["predictor"]["model"]["runtime"] == "vllm-cuda-runtime"
        assert isvc["metadata"]["annotations"][kserve.HARDWARE_PROFILE_NAME] == "nvidia-l4"
        assert isvc["metadata"]["labels"]["opendatahub.io/dashboard"] == "true"
    profile = _find(objects, "HardwareProfile")
    assert profile["spec"]["scheduling"]["node"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert [r["spec"]["to"]["name"] for r in objects if r["kind"] == "Route"] == ["maas-gateway"]
    assert _find(objects, "Namespace")["metadata"]["labels"]["opendatahub.io/dashboard"] == "true"


def test_kind_serves_the_tiny_model_on_the_cpu_image(rendered):
    objects = rendered["overlays/kind"]
    runtime = _find(objects, "ServingRuntime")["spec"]["containers"][0]
    assert runtime["image"] == kserve.VLLM_CPU_IMAGE and "--model=/mnt/models" in runtime["args"]
    isvcs = {o["metadata"]["name"]: o["spec"]["predictor"]["model"] for o in objects if o["kind"] == "InferenceService"}
    assert list(isvcs) == ["parasol-tiny", "parasol-tiny-w8a8"]  # Lab 5's two models: the tiny one, its W8A8 copy
    assert all("nvidia.com/gpu" not in model["resources"]["limits"] for model in isvcs.values())
    assert "--dtype=float32" in isvcs["parasol-tiny"]["args"]
    # W8A8 runs in the dtype its scheme needs on vLLM's CPU image (float32 kills that engine)
    assert f"--dtype={quantize.get_scheme('w8a8').cpu_dtype}" in isvcs["parasol-tiny-w8a8"]["args"]
    assert isvcs["parasol-tiny-w8a8"]["storageUri"] == "oci://localhost:5001/modelcars/parasol-tiny-w8a8:v1"
    config = next(o for o in objects if o["kind"] == "ConfigMap" and "litellm.yaml" in o.get("data", {}))
    routed = [m["model_name"] for m in yaml.safe_load(config["data"]["litellm.yaml"])["model_list"]]
    assert routed == list(isvcs)  # the kind gateway routes both
    assert _find(objects, "Deployment", "maas-gateway")["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "localhost:5001/maas-workshop/gateway:0.1.0"


def test_attendee_namespace_has_rbac_and_a_gpu_quota(rendered):
    objects = rendered["attendee"]
    hard = _find(objects, "ResourceQuota")["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "1" and "count/inferenceservices.serving.kserve.io" in hard
    assert _find(objects, "RoleBinding")["roleRef"]["name"] == "admin"


def test_no_secret_in_git_only_a_generator_from_an_ignored_file():
    committed = [p for p in ROOT.rglob("*.yaml") if "kind: Secret" in p.read_text()]
    assert committed == []
    assert "secrets.env" in (ROOT / ".gitignore").read_text() and "ledger-reader.env" in (ROOT / ".gitignore").read_text()
    gateway = yaml.safe_load((ROOT / "base/gateway/kustomization.yaml").read_text())
    assert gateway["secretGenerator"][0]["envs"] == ["secrets.env"]


def test_generated_credentials_are_fresh_private_and_kept(tmp_path):
    path = manifests.write_secrets_env(tmp_path)
    first = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in first.splitlines())
    assert set(values) == set(manifests.SECRET_KEYS)
    assert values["POSTGRESQL_PASSWORD"] in values["MAAS_GATEWAY_DSN"]
    assert manifests.write_secrets_env(tmp_path).read_text() == first  # never overwritten by accident
    assert manifests.secrets_env_text() != manifests.secrets_env_text()
    reader_file = tmp_path / manifests.READER_FILE  # the ledger reader's: its own file, its own password
    reader = dict(line.split("=", 1) for line in reader_file.read_text().splitlines())
    assert stat.S_IMODE(reader_file.stat().st_mode) == 0o600 and set(reader) == set(manifests.READER_KEYS)
    assert reader["MAAS_LEDGER_READER_DSN"].startswith(f"postgresql://maas_reader:{reader['MAAS_LEDGER_READER_PASSWORD']}@")
    assert values["POSTGRESQL_PASSWORD"] not in reader_file.read_text()
    reader_file.unlink()  # a tree from before the reader: its file is added, the gateway's credentials stay
    assert manifests.write_secrets_env(tmp_path).read_text() == first and reader_file.is_file()


def test_a_model_without_a_published_modelcar_cannot_be_listed(tmp_path):
    listing = tmp_path / "models.yaml"
    listing.write_text("namespace: m\nmodels:\n  - name: mixtral\n    catalog: mixtral-8x7b-instruct-v0.1\n")
    with pytest.raises(kserve.ManifestError, match="no published ModelCar"):
        manifests.load_model_list(listing)
    with pytest.raises(kserve.ManifestError, match="not latest"):
        kserve.ModelDeployment("granite", "oci://quay.io/redhat-ai-services/modelcar-catalog:latest")


def test_a_broken_kustomization_is_reported(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(kserve.ManifestError, match="kubectl kustomize"):
        validate.kustomize_build(tmp_path)


# -- planted mistakes ----------------------------------------------------------------------------------------
def _isvc(objects):
    return _find(objects, "InferenceService", "granite-3-1-2b-instruct")


def _gateway(objects):
    return _find(objects, "Deployment", "maas-gateway")["spec"]["template"]["spec"]["containers"][0]


def _plant_route(objects):
    objects.append({"apiVersion": "route.openshift.io/v1", "kind": "Route",
                    "metadata": {"name": "granite", "namespace": "maas-models",
                                 "labels": _isvc(objects)["metadata"]["labels"]},
                    "spec": {"to": {"kind": "Service", "name": "granite-3-1-2b-instruct-predictor"}}})


def _open_policy(objects):
    policy = _find(objects, "NetworkPolicy", "maas-predictors-from-gateway-only")
    policy["spec"]["ingress"] = [{}]


def _all_namespaces_policy(objects):
    policy = _find(objects, "NetworkPolicy", "maas-predictors-from-gateway-only")
    policy["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]


def _drop_policies(objects):
    objects[:] = [o for o in objects if o["kind"] != "NetworkPolicy"]


def _limit_without_request(objects):
    del _isvc(objects)["spec"]["predictor"]["model"]["resources"]["requests"]["nvidia.com/gpu"]


PLANTED = {
    "typo in an InferenceService field": (
        lambda o: _isvc(o)["spec"]["predictor"]["model"].update(
            storageURI=_isvc(o)["spec"]["predictor"]["model"].pop("storageUri")), "storageURI"),
    "typo in a Deployment field (strict Kubernetes schema)": (
        lambda o: _gateway(o).update(imagePullPolicyy="Always"), "imagePullPolicyy"),
    "typo in a toleration": (
        lambda o: _isvc(o)["spec"]["predictor"]["tolerations"][0].update(efect="NoSchedule"), "efect"),
    "GPU limit without request": (_limit_without_request, "GPUs need request = limit"),
    "missing GPU toleration": (
        lambda o: _isvc(o)["spec"]["predictor"].pop("tolerations"), "without a toleration"),
    "latest image": (lambda o: _gateway(o).update(image="docker.io/vllm/vllm-openai:latest"), "uses latest"),
    "untagged image": (lambda o: _gateway(o).update(image="quay.io/sclorg/postgresql-16-c9s"), "has no tag"),
    "latest ModelCar": (
        lambda o: _isvc(o)["spec"]["predictor"]["model"].update(
            storageUri="oci://quay.io/redhat-ai-services/modelcar-catalog:latest"), "uses latest"),
    "a Route to a shared model": (_plant_route, "routes to the shared model"),
    "a shared model exposed by label": (
        lambda o: _isvc(o)["metadata"]["labels"].update({"networking.kserve.io/visibility": "exposed"}),
        "must not be exposed"),
    "a NetworkPolicy that lets everything in": (_open_policy, "lets everything in"),
    "a NetworkPolicy that admits every namespace": (_all_namespaces_policy, "lets everything in"),
    "no NetworkPolicy for the predictors": (_drop_policies, "no NetworkPolicy restricts ingress"),
    "a runtime patch that lost vLLM's args": (
        lambda o: _find(o, "ServingRuntime")["spec"]["containers"][0].pop("args"), "lost its command, args"),
    "an object without the workshop labels": (
        lambda o: _find(o, "Service", "maas-gateway")["metadata"].pop("labels"), "missing the workshop labels"),
}


@pytest.mark.parametrize("mistake", list(PLANTED))
def test_planted_mistakes_are_caught(rendered, mistake):
    plant, words = PLANTED[mistake]
    objects = copy.deepcopy(rendered["."])
    assert validate.check_objects(objects) == []
    plant(objects)
    problems = validate.check_objects(objects)
    assert any(words in p for p in problems), problems


def test_a_hardware_profile_with_node_scheduling_but_no_node_is_refused(rendered):
    profile = copy.deepcopy(_find(rendered["overlays/openshift"], "HardwareProfile"))
    del profile["spec"]["scheduling"]["node"]
    with pytest.raises(kserve.ManifestError, match="node"):
        kserve.validate(profile)


def test_shared_models_are_marked_shared(rendered):
    assert all(o["metadata"]["labels"].get(SHARED) == "true" for o in rendered["."] if o["kind"] == "InferenceService")


def test_render_manifests_check_is_clean():
    assert kserve.stale_manifests(ROOT) == []
    assert not (Path(ROOT) / "base/gateway/secrets.env").exists() or "secrets.env" in (ROOT / ".gitignore").read_text()


def test_postgres_gives_the_ledger_reader_its_login_at_every_start_and_the_gateway_knows_nothing_of_it():
    from helpers.gateway import reader

    objects = manifests.postgres_objects("maas-models")
    pod = _find(objects, "StatefulSet")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert env[reader.PASSWORD_ENV] == {"name": manifests.READER_SECRET, "key": reader.PASSWORD_ENV}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "start")
    assert mount["mountPath"] == f"{manifests.POSTGRES_START_DIR}/{manifests.START_SCRIPT_FILE}" and mount["subPath"]
    assert (ROOT / "base/gateway" / manifests.START_SCRIPT_FILE).read_text() == reader.START_SCRIPT
    assert "\\getenv reader_password" in reader.START_SCRIPT and "PASSWORD '" not in reader.START_SCRIPT
    gateway = _find(manifests.gateway_objects("maas-models", ()), "Deployment")
    assert manifests.READER_SECRET not in str(gateway)  # the reader's password is PostgreSQL's and Lab 6's only
