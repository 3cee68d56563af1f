"""LLM Compressor and lm-eval for real, on the tiny model (seconds each)."""
import json
from pathlib import Path

import pytest

from helpers import evaluate, quantize
from helpers.errors import WorkshopError
from helpers.models import ensure_tiny_model, training_examples


@pytest.fixture(scope="module")
def w4a16(tmp_path_factory):
    model = ensure_tiny_model(show_progress=False)
    out = tmp_path_factory.mktemp("q") / "w4a16"
    texts = [e.text for e in training_examples()[::50]][:128]
    record = quantize.quantize(model.path, "w4a16", out, texts)
    return model, out, record


def test_w4a16_checkpoint_is_compressed_tensors_with_4_bit_groups(w4a16):
    _, out, record = w4a16
    config = json.loads((out / "config.json").read_text())["quantization_config"]
    weights = config["config_groups"]["group_0"]["weights"]
    assert config["quant_method"] == "compressed-tensors" and config["format"] == "pack-quantized"
    assert (weights["num_bits"], weights["group_size"]) == (4, 128)
    assert config["ignore"] == ["lm_head"]
    assert record["scheme"] == "w4a16" and (out / "tokenizer.json").is_file()


def test_linear_weights_shrink_at_least_3_5x_against_bf16(w4a16):
    model, out, _ = w4a16
    base = quantize.checkpoint_bytes(model.path)  # fp32
    quantized = quantize.checkpoint_bytes(out)
    assert base["linear_weight_bytes"] < base["checkpoint_bytes"]
    assert (base["linear_weight_bytes"] / 2) / quantized["linear_weight_bytes"] >= 3.5


def test_lm_eval_scores_the_quantized_checkpoint_offline(w4a16, monkeypatch, tmp_path):
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path))
    model, out, _ = w4a16
    scores = evaluate.evaluate_checkpoint(out, limit=60)
    assert set(scores) == {"exact_match", "mc_accuracy"}
    assert 0.6 <= scores["exact_match"] <= 1.0 and 0.6 <= scores["mc_accuracy"] <= 1.0


def test_task_data_has_one_right_choice_among_four(monkeypatch, tmp_path):
    monkeypatch.setenv("MAAS_STATE_DIR", str(tmp_path))
    folder = evaluate.write_tasks(n=100)
    rows = [json.loads(line) for line in (folder / "parasol_arith.jsonl").read_text().splitlines()]
    assert len(rows) == 100
    for row in rows:
        assert len(set(row["choices"])) == 4 and row["choices"][row["label"]] == row["answer"]
    assert str(folder / "parasol_arith.jsonl") in (folder / "parasol_arith.yaml").read_text()


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(WorkshopError, match="unknown quantization scheme 'int3'; available: w4a16, w8a8"):
        quantize.get_scheme("int3")
    assert quantize.get_scheme("fp8").cpu_dtype is None  # FP8 is the L4 path, not this CPU's
