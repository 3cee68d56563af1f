"""The gateway's route allowlist: which routes application keys may call, and which model each reaches."""
from __future__ import annotations

import pytest

from helpers.gateway.routes import Admitted, Refusal, classify


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions",
                                  "/v1/embeddings", "/embeddings"])
def test_body_routes_reach_the_body_model(path):
    assert classify("POST", path, {"model": "parasol-tiny", "prompt": "hi"}) == Admitted("parasol-tiny")


@pytest.mark.parametrize("path", ["/openai/deployments/parasol-tiny-2/chat/completions",
                                  "/engines/parasol-tiny-2/chat/completions",
                                  "/openai/deployments/parasol-tiny-2/completions",
                                  "/engines/parasol-tiny-2/embeddings"])
def test_url_routes_reach_the_url_model_whatever_the_body_says(path):
    assert classify("POST", path, {}) == Admitted("parasol-tiny-2")
    mismatch = classify("POST", path, {"model": "parasol-tiny"})  # the bypass of 0478c47
    assert isinstance(mismatch, Refusal) and mismatch.status == 400 and "URL names model 'parasol-tiny-2'" in mismatch.message


@pytest.mark.parametrize("method,path", [
    ("POST", "/v1/responses"), ("POST", "/v1/messages"), ("POST", "/responses"), ("POST", "/vllm/v1/chat/completions"),
    ("POST", "/hosted_vllm/v1/completions"), ("POST", "/v1/images/generations"), ("POST", "/v1/audio/speech"),
    ("POST", "/v1/rerank"), ("POST", "/key/generate"), ("POST", "/model/new"), ("GET", "/v1/chat/completions"),
    ("POST", "/v1/batches"), ("POST", "/v1/realtime"), ("POST", "/anthropic/v1/messages"), ("GET", "/spend/logs"),
    ("POST", "/openai/deployments/x/images/generations"), ("POST", "/v1/chat/completions/extra"),
])
def test_everything_else_is_404_and_says_what_is_offered(method, path):
    refusal = classify(method, path, {"model": "parasol-tiny"})
    assert isinstance(refusal, Refusal) and refusal.status == 404
    assert "/v1/chat/completions" in refusal.message and path in refusal.message


def test_the_model_list_is_offered_to_keys():
    assert classify("GET", "/v1/models", None) == Admitted(None)


@pytest.mark.parametrize("body", [{}, {"model": ""}, {"model": 3}, None])
def test_a_request_without_a_model_is_400(body):
    refusal = classify("POST", "/v1/chat/completions", body)
    assert isinstance(refusal, Refusal) and refusal.status == 400 and "name the model" in refusal.message


@pytest.mark.parametrize("prompt", [[1, 2, 3], [[1, 2], [3, 4]]])
def test_token_id_prompts_get_a_400_that_says_what_to_send(prompt):
    refusal = classify("POST", "/v1/completions", {"model": "m", "prompt": prompt})
    assert isinstance(refusal, Refusal) and refusal.status == 400 and "tokenized_requests=False" in refusal.message
    assert classify("POST", "/v1/completions", {"model": "m", "prompt": ["a", "b"]}) == Admitted("m")


@pytest.mark.parametrize("option", [{"fallbacks": ["parasol-tiny-2"]}, {"context_window_fallbacks": [{"m": ["x"]}]},
                                    {"content_policy_fallbacks": []}, {"router_settings_override": {"fallbacks": []}},
                                    {"mock_response": "4"}, {"mock_testing_fallbacks": True}])
def test_litellms_routing_and_mock_options_get_a_400_that_names_them(option):
    refusal = classify("POST", "/v1/chat/completions", {"model": "parasol-tiny", **option})
    assert isinstance(refusal, Refusal) and refusal.status == 400 and refusal.kind == "routing_option"
    assert next(iter(option)) in refusal.message and "'parasol-tiny'" in refusal.message
    plain = {"model": "parasol-tiny", "max_tokens": 4, "stream_options": {"include_usage": True}}
    assert classify("POST", "/v1/chat/completions", plain) == Admitted("parasol-tiny")
