"""The local platform for real: the CLI starts vLLM with the tiny model, the `openai` client talks to
it. (The server's deaths and `down` are test_server_deaths.py's, last of the integration tests.)"""
from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest
import requests

from helpers.client import ask, openai_client
from helpers.errors import PlatformError, PortInUseError
from helpers.models import MODEL_NAME, held_out_examples
from helpers.platform import LocalPlatform
from helpers.platform.local import _child, engine_beside_its_worker
from tests.integration.servers import SECOND_MODEL, starting_alongside

pytestmark = pytest.mark.integration


def helpers_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def served():
    """`python -m helpers up`, then the deployment as `status --json` reports it. It stays up for the next
    modules; test_server_deaths.py (sorted last) kills it and checks `helpers down`. test_gateway.py's second
    model starts alongside (`starting_alongside`: two vLLM starts in the time of one)."""
    with starting_alongside(SECOND_MODEL):
        up = helpers_cli("up")
    assert up.returncode == 0, up.stdout + up.stderr
    status = json.loads(helpers_cli("status", "--json").stdout)
    (deployment,) = [d for d in status["deployments"] if d["name"] == "parasol-tiny"]
    return LocalPlatform().get("parasol-tiny"), deployment


def test_status_reports_a_ready_endpoint_on_loopback(served):
    _, status = served
    assert status["status"] == "ready"
    assert status["endpoint"].startswith("http://127.0.0.1:") and status["endpoint"].endswith("/v1")
    assert requests.get(status["endpoint"] + "/models", timeout=5).json()["data"][0]["id"] == "parasol-tiny"


def test_the_engine_runs_on_its_workers_cores_and_leaves_the_api_server_its_own(served):
    """engine_beside_its_worker: vLLM's engine loop spins beside its worker, not on the API server's core."""
    deployment, _ = served
    server = psutil.Process(LocalPlatform()._read("parasol-tiny")["pid"])
    engine = _child(server, "VLLM::EngineCor")
    worker = _child(engine, "VLLM::Worker")
    assert engine.cpu_affinity() == worker.cpu_affinity()
    assert len(worker.cpu_affinity()) < psutil.cpu_count() or psutil.cpu_count() == 1  # vLLM keeps a core aside
    assert engine_beside_its_worker(server) == worker.cpu_affinity()
    assert engine_beside_its_worker(None) is None


def test_chat_completion_not_streamed(served):
    deployment, _ = served
    reply = openai_client(deployment).chat.completions.create(
        model="parasol-tiny", messages=[{"role": "user", "content": "What is 30 + 12?"}], max_tokens=8, temperature=0)
    assert reply.choices[0].message.content.strip()
    assert reply.usage.prompt_tokens > 5 and 0 < reply.usage.completion_tokens <= 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_completion_streamed_with_usage_matches_the_plain_one(served):
    deployment, _ = served
    client = openai_client(deployment)
    messages = [{"role": "user", "content": "What is 47 + 16?"}]
    plain = client.chat.completions.create(model="parasol-tiny", messages=messages, max_tokens=8, temperature=0)
    chunks = list(client.chat.completions.create(model="parasol-tiny", messages=messages, max_tokens=8, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert streamed_text == plain.choices[0].message.content
    assert (usage.prompt_tokens, usage.completion_tokens) == (plain.usage.prompt_tokens, plain.usage.completion_tokens)


def test_the_model_answers_held_out_questions(served):
    deployment, _ = served
    questions = held_out_examples(20)
    right = sum(ask(deployment, q.question) == q.answer for q in questions)
    assert right >= 6, f"only {right}/20 held-out questions answered exactly"


def test_vllm_metrics_are_exposed(served):
    _, status = served
    metrics = requests.get(status["endpoint"].removesuffix("/v1") + "/metrics", timeout=5).text
    assert "vllm:generation_tokens_total" in metrics


def test_up_is_idempotent_and_a_name_serves_one_model(served, tmp_path):
    deployment, status = served
    again = helpers_cli("up")
    assert again.returncode == 0 and status["endpoint"] in again.stdout
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    with pytest.raises(PlatformError, match="already serves"):
        LocalPlatform().deploy(other, "parasol-tiny")


def test_a_taken_port_is_refused_with_the_owner_named(served):
    _, status = served
    platform = LocalPlatform()
    with pytest.raises(PortInUseError, match=f"port {status['port']} on 127.0.0.1 is already taken"):
        platform.deploy(MODEL_NAME, "second-copy", port=status["port"])
    assert "second-copy" not in [d.name for d in platform.list()]  # the failed deploy left nothing
