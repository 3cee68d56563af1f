import math

import pytest
import yaml

from helpers import catalog
from helpers.catalog import CatalogError


@pytest.fixture(scope="module")
def models():
    return catalog.load_catalog()


def write_catalog(tmp_path, data) -> str:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def minimal(**model_fields) -> dict:
    model = {"name": "m-1", "family": "f", "parameters_b": 8, "quantization": "bf16", "license": "apache-2.0",
             "tasks": ["chat"], "sources": ["s1"], **model_fields}
    return {"sources": [{"id": "s1", "title": "A model card", "url": "https://example.org/m"}], "models": [model]}


def test_the_shipped_catalog_loads_and_every_model_cites_a_listed_source(models):
    source_ids = set(catalog.load_sources().index)
    assert len(models) >= 15 and models.index.is_unique
    for name, sources in models.sources.items():
        assert sources and set(sources) <= source_ids, name
    for name in ("granite-3.1-8b-instruct-quantized.w4a16", "llama-3.1-8b-instruct-quantized.w8a8",
                 "mixtral-8x7b-instruct-v0.1", "deepseek-r1-distill-qwen-14b-quantized.w4a16", "parasol-tiny-w4a16"):
        assert name in models.index


def test_quantized_models_come_from_red_hat_and_name_their_base(models):
    quantized = models[(models.quantization != "bf16") & (models.family != "parasol")]
    assert len(quantized) >= 6
    assert quantized.hf_repo.str.startswith("RedHatAI/").all()
    assert quantized.base.isin(models.index).all()
    assert models.loc["granite-3.1-2b-instruct", "modelcar"] == \
        "oci://quay.io/redhat-ai-services/modelcar-catalog:granite-3.1-2b-instruct"


def test_weight_memory_is_parameters_times_bytes_per_weight():
    assert catalog.weight_memory_gb(8, "bf16") == 16
    assert catalog.weight_memory_gb(8, "w4a16") == 4
    assert catalog.weight_memory_gb(8, "w8a8") == catalog.weight_memory_gb(8, "fp8") == 8
    with pytest.raises(CatalogError, match="unknown quantization 'int3'.*bf16"):
        catalog.weight_memory_gb(8, "int3")


def test_the_loaded_catalog_computes_memory_and_the_reference_recovery(models):
    llama = models.loc["llama-3.1-8b-instruct"]
    assert llama.weight_memory_gb == pytest.approx(2 * llama.parameters_b)
    assert llama.recovery_pct == 100 and llama.recovery_basis == "reference"
    w4 = models.loc["llama-3.1-8b-instruct-quantized.w4a16"]
    assert w4.weight_memory_gb == pytest.approx(llama.weight_memory_gb / 4)
    assert w4.recovery_basis == "published" and 95 < w4.recovery_pct < 100
    assert math.isnan(models.loc["deepseek-r1-distill-qwen-14b-quantized.w4a16", "recovery_pct"])
    tiny = models.loc["parasol-tiny-w4a16"]
    assert tiny.recovery_basis == "measured" and tiny.measured_exact_match == 0.895
    assert tiny.measured_output_tokens_per_s > models.loc["parasol-tiny", "measured_output_tokens_per_s"]


def test_a_70b_model_does_not_fit_an_l4_but_a_quantized_8b_does(models):
    assert not catalog.fits_gpu(catalog.weight_memory_gb(70, "bf16"), gpu_memory_gb=24)
    assert catalog.fits_gpu(catalog.weight_memory_gb(8, "w4a16"), gpu_memory_gb=24)
    assert not catalog.fits_gpu(20, 24) and catalog.fits_gpu(19.2, 24)  # 20% stays for the KV cache
    assert catalog.fits_gpu(20, 24, headroom=0.1)
    fit = catalog.fits_on(models, "L4")
    assert fit["llama-3.1-8b-instruct-quantized.w4a16"] and not fit["llama-3.1-70b-instruct-quantized.w4a16"]
    assert catalog.fits_on(models, "L40S")["llama-3.1-70b-instruct-quantized.w4a16"]


def test_gpus_per_replica_splits_big_models_across_cards():
    assert catalog.gpus_per_replica(4.0) == 1
    assert catalog.gpus_per_replica(35.3) == 2
    assert catalog.gpus_per_replica(141.2) == 8


def test_filter_keeps_chat_models_that_fit_an_l4_with_high_recovery(models):
    kept = catalog.filter_models(models, min_recovery_pct=99, task="chat", fits="L4")
    assert "granite-3.1-8b-instruct-quantized.w4a16" in kept.index
    assert "llama-3.1-8b-instruct-quantized.w4a16" not in kept.index  # 98.9% is under the bar
    assert "llama-3.1-70b-instruct-quantized.w4a16" not in kept.index  # does not fit
    assert "deepseek-r1-distill-qwen-14b-quantized.w4a16" not in kept.index  # reasoning, no figure
    assert not any(name.startswith("parasol") for name in kept.index)  # not a chat model
    assert (kept.recovery_pct >= 99).all() and (kept.weight_memory_gb <= 19.2).all()
    small = catalog.filter_models(models, max_weight_gb=5, fits=None)
    assert (small.weight_memory_gb <= 5).all() and "parasol-tiny" in small.index
    assert len(catalog.filter_models(models, fits=None)) == len(models)


def test_rank_puts_the_best_first(models):
    shortlist = catalog.filter_models(models, min_recovery_pct=99, task="chat", fits="L4", min_params_b=7)
    by_memory = catalog.rank(shortlist, by=["weight_memory_gb", "recovery_pct"])
    assert by_memory.index[0] == "granite-3.1-8b-instruct-quantized.w4a16"
    assert by_memory.weight_memory_gb.is_monotonic_increasing
    by_recovery = catalog.rank(models, by="recovery_pct")
    assert by_recovery.index[0] in ("parasol-tiny-w4a16", "parasol-tiny-w8a8")  # 100.6%
    assert math.isnan(by_recovery.recovery_pct.iloc[-1])  # no figure: last
    by_speed = catalog.rank(models, by="measured_output_tokens_per_s")
    assert list(by_speed.index[:3]) == ["parasol-tiny-w4a16", "parasol-tiny-w8a8", "parasol-tiny"]


def test_unknown_task_gpu_or_ranking_lists_the_valid_ones(models):
    with pytest.raises(CatalogError, match="unknown task 'poetry'.*chat.*reasoning"):
        catalog.filter_models(models, task="poetry")
    with pytest.raises(CatalogError, match="unknown GPU 'H200'.*L4.*L40S"):
        catalog.filter_models(models, fits="H200")
    with pytest.raises(CatalogError, match="cannot rank by \\['price'\\].*weight_memory_gb"):
        catalog.rank(models, by=["price"])


def test_a_missing_field_names_the_entry_and_the_field(tmp_path):
    data = minimal()
    del data["models"][0]["license"]
    with pytest.raises(CatalogError, match="model 'm-1': missing field\\(s\\) \\['license'\\]"):
        catalog.load_catalog(write_catalog(tmp_path, data))


def test_an_unknown_source_id_is_an_error(tmp_path):
    data = minimal(sources=["s1", "nowhere"])
    with pytest.raises(CatalogError, match="model 'm-1'.*unknown source id\\(s\\) \\['nowhere'\\].*s1"):
        catalog.load_catalog(write_catalog(tmp_path, data))


@pytest.mark.parametrize(("fields", "message"), [
    ({"quantization": "int3"}, "field 'quantization' is 'int3'"),
    ({"parameters_b": -1}, "field 'parameters_b' must be a positive number"),
    ({"tasks": ["chat", "poetry"]}, "field 'tasks' has \\['poetry'\\]"),
    ({"recovery_pct": 99.0}, "field 'recovery_basis' must be one of"),
    ({"base": "ghost"}, "field 'base' names 'ghost'"),
    ({"price": 3}, "unknown field\\(s\\) \\['price'\\]"),
])
def test_invalid_fields_are_named(tmp_path, fields, message):
    with pytest.raises(CatalogError, match=message):
        catalog.load_catalog(write_catalog(tmp_path, minimal(**fields)))


def test_a_source_without_url_and_a_missing_file_are_errors(tmp_path):
    data = minimal()
    del data["sources"][0]["url"]
    with pytest.raises(CatalogError, match="sources\\[0\\].*missing field 'url'"):
        catalog.load_catalog(write_catalog(tmp_path, data))
    with pytest.raises(CatalogError, match="no catalog at"):
        catalog.load_catalog(tmp_path / "absent.yaml")


def test_local_modelcars_resolve_to_the_workshop_registry():
    assert catalog.modelcar_uri("local:modelcars/parasol-tiny:v1", "127.0.0.1:5000") == \
        "oci://127.0.0.1:5000/modelcars/parasol-tiny:v1"
    published = "oci://quay.io/redhat-ai-services/modelcar-catalog:granite-3.1-2b-instruct"
    assert catalog.modelcar_uri(published) == published
    assert catalog.modelcar_uri(None) is None
