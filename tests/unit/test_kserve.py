import pytest

from helpers import kserve
from helpers.settings import get_settings


@pytest.fixture
def isvc():
    return kserve.inference_service(kserve.ModelDeployment("granite-3-1-2b-instruct"))


def test_rendered_objects_pass_the_strict_schema(isvc):
    kserve.validate(kserve.serving_runtime())
    kserve.validate(isvc)


def test_the_l4_profile_requests_one_gpu_equal_to_its_limit(isvc):
    predictor = isvc["spec"]["predictor"]
    resources = predictor["model"]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert predictor["model"]["storageUri"] == "oci://quay.io/redhat-ai-services/modelcar-catalog:granite-3.1-2b-instruct"


def test_vllm_runtime_serves_mnt_models_under_the_isvc_name():
    runtime = kserve.serving_runtime()
    args = runtime["spec"]["containers"][0]["args"]
    assert "--model=/mnt/models" in args and "--served-model-name={{.Name}}" in args and "--port=8080" in args
    assert runtime["spec"]["supportedModelFormats"] == [{"name": "vLLM", "autoSelect": True}]


@pytest.mark.parametrize("mistake, where", [
    (lambda o: o["spec"]["predictor"]["model"].update(storageURI=o["spec"]["predictor"]["model"].pop("storageUri")),
     "storageURI"),
    (lambda o: o["spec"]["predictor"].update(tolerations=[{"key": "nvidia.com/gpu", "efect": "NoSchedule"}]), "efect"),
    (lambda o: o["metadata"].update(name="Granite_3.1"), "does not match"),
    (lambda o: o["spec"]["predictor"]["model"].update(storageUri="quay.io/x:y"), "does not match"),
])
def test_planted_mistakes_are_caught(isvc, mistake, where):
    mistake(isvc)
    with pytest.raises(kserve.ManifestError, match=where):
        kserve.validate(isvc)


def test_only_oci_model_cars_are_deployed():
    with pytest.raises(kserve.ManifestError, match="oci://"):
        kserve.ModelDeployment("granite", "s3://bucket/granite")


def test_committed_manifests_are_rendered_and_valid():
    assert kserve.stale_manifests(get_settings().root / "manifests") == [], "run: python -m helpers render-manifests"
