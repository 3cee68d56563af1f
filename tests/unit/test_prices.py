"""The one price table: its shape, its numbers against their derivation, and the arithmetic of a bill."""
from __future__ import annotations

import pytest
import yaml

from helpers import catalog, prices
from helpers.prices import Price, PriceTableError

TABLE = yaml.safe_load(prices.default_path().read_text())
ENTRIES = TABLE["models"]
ASSUMED = TABLE["assumptions"]
CATALOG = yaml.safe_load(catalog.default_path().read_text())
CATALOG_MODELS = {m["name"]: m for m in CATALOG["models"]}
MODELS_YAML = yaml.safe_load((prices.default_path().parent.parent / "manifests" / "models.yaml").read_text())


def test_every_served_model_has_a_price_and_others_pay_the_default():
    table = prices.load_prices()
    served = [m["name"] for m in MODELS_YAML["models"] + MODELS_YAML["kind"]]
    local = ["parasol-tiny", "parasol-tiny-2", "parasol-tiny-w4a16", "parasol-tiny-w8a8"]
    assert set(served + local) <= set(table)
    assert prices.price_of("a-model-nobody-priced") == table["default"]


def test_a_completion_token_never_costs_less_than_a_prompt_token():
    for model, price in prices.load_prices().items():
        assert price.completion_usd_per_million >= price.prompt_usd_per_million > 0, model


def test_an_unlisted_model_is_never_cheaper_than_a_listed_one():
    table = prices.load_prices()
    default = table.pop("default")
    assert default.completion_usd_per_million == max(p.completion_usd_per_million for p in table.values())
    assert default.prompt_usd_per_million == max(p.prompt_usd_per_million for p in table.values())


@pytest.mark.parametrize("model", [m for m in ENTRIES if m != "default"])
def test_each_price_follows_from_its_derivation(model):
    entry = ENTRIES[model]
    listed = CATALOG_MODELS[entry["catalog"]]
    assert set(entry["sources"]) <= {s["id"] for s in CATALOG["sources"]}
    if entry["basis"] == "measured":
        assert entry["output_tokens_per_s"] == listed["measured"]["output_tokens_per_s"]
    else:
        assert entry["basis"] == "roofline"
        weight_gb = catalog.weight_memory_gb(listed["parameters_b"], listed["quantization"])
        roofline = ASSUMED["streams"] * ASSUMED["l4_memory_bandwidth_gb_per_s"] / weight_gb * ASSUMED["efficiency"]
        assert entry["output_tokens_per_s"] == round(roofline)
    completion = ASSUMED["gpu_usd_per_hour"] / (entry["output_tokens_per_s"] * 3600 * ASSUMED["utilization"]) * 1e6
    assert entry["completion_usd_per_million"] == pytest.approx(completion, abs=5e-4)
    assert entry["prompt_usd_per_million"] == pytest.approx(ASSUMED["prompt_share"] * completion, abs=5e-4)


def test_cost_prices_prompt_and_completion_tokens_apart():
    table = {"m": Price(1.0, 4.0), "default": Price(10.0, 20.0)}
    assert prices.cost_usd("m", 1_000_000, 0, table) == pytest.approx(1.0)
    assert prices.cost_usd("m", 500_000, 250_000, table) == pytest.approx(0.5 + 1.0)
    assert prices.cost_usd("other", 1_000_000, 1_000_000, table) == pytest.approx(30.0)
    tiny = prices.price_of("parasol-tiny")
    assert prices.cost_usd("parasol-tiny", 350, 160) == pytest.approx(
        (350 * tiny.prompt_usd_per_million + 160 * tiny.completion_usd_per_million) / 1e6)


@pytest.mark.parametrize("text, message", [
    ("models: {m: {prompt_usd_per_million: 1, completion_usd_per_million: 2}}", "default"),
    ("models: {default: {prompt_usd_per_million: 1}}", "completion_usd_per_million"),
    ("models: {default: {prompt_usd_per_million: -1, completion_usd_per_million: 2}}", "prompt_usd_per_million"),
    ("models: {default: {prompt_usd_per_million: '1', completion_usd_per_million: 2}}", "must be a number"),
    ("models: {default: 0.5}", "must be a mapping"),
    ("models: [default]", "`models:` mapping"),
    ("models: {default: [", "not valid YAML"),
])
def test_a_malformed_table_is_refused_with_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PriceTableError, match=message):
        prices.load_prices(path)


def test_a_missing_table_says_where_it_looked(tmp_path):
    with pytest.raises(PriceTableError, match="cannot read"):
        prices.load_prices(tmp_path / "nowhere.yaml")


def test_the_gateway_prices_each_model_from_the_table():
    from helpers.gateway.proxy import render_config
    from helpers.platform.base import Deployment

    deployments = [Deployment(name, "/models/x", f"http://127.0.0.1:{port}/v1", "ready", {})
                   for name, port in (("parasol-tiny", 8001), ("unlisted", 8002))]
    routes = {m["model_name"]: m["litellm_params"] for m in render_config(deployments)["model_list"]}
    tiny, default = prices.price_of("parasol-tiny"), prices.price_of("default")
    assert routes["parasol-tiny"]["input_cost_per_token"] == pytest.approx(tiny.prompt_usd_per_million / 1e6)
    assert routes["parasol-tiny"]["output_cost_per_token"] == pytest.approx(tiny.completion_usd_per_million / 1e6)
    assert routes["unlisted"]["output_cost_per_token"] == pytest.approx(default.completion_usd_per_million / 1e6)
