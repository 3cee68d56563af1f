"""The model `make setup` built: its record, tokenizer and chat template."""
import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from helpers.errors import ModelNotFoundError
from helpers.models import MODEL_NAME, Recipe, ensure_tiny_model, recipe_hash, resolve_model


@pytest.fixture(scope="module")
def model():
    return ensure_tiny_model(show_progress=False)


def test_the_built_model_matches_the_current_recipe(model):
    assert model.recipe_hash == recipe_hash(Recipe())
    assert Path(model.path) == resolve_model(MODEL_NAME)
    config = json.loads((Path(model.path) / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] % 128 == 0 and config["intermediate_size"] % 128 == 0


def test_held_out_accuracy_is_in_the_band_of_every_cpu_and_seed(model):
    # scripts/model_band.py measured 90.0% to 99.8% on all 488 held-out questions (SIMD levels default and
    # avx2, seeds 1234, 1, 2): 85% leaves room below that band; the 67.5% of an undertrained model fails
    assert model.held_out_questions == 488
    assert 0.85 <= model.held_out_accuracy <= 1.0, model.held_out_accuracy


def test_digits_are_single_tokens_and_chat_matches_the_task_prompt(model):
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    assert [t for t in tokenizer.tokenize("1234") if t.isdigit()] == ["1", "2", "3", "4"]
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False)
    assert chat == "Q: What is 2 + 3?\nA:"


def test_unknown_models_get_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not 'parasol-tiny' and not a folder"):
        resolve_model("granite-3.1-8b-instruct")
    with pytest.raises(ModelNotFoundError, match="config.json"):
        resolve_model(tmp_path)
