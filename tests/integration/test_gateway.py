"""The MaaS gateway for real: LiteLLM + our plugin + PostgreSQL in front of two vLLM servers."""
from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests

from helpers import maas
from helpers.client import ask
from helpers.gateway import postgres, store
from helpers.models import MODEL_NAME
from helpers.platform import LocalPlatform

pytestmark = pytest.mark.integration

MODELS = ("parasol-tiny", "parasol-tiny-2")  # two deployments: two models behind one gateway
QUESTION = [{"role": "user", "content": "What is 41 + 7?"}]


@pytest.fixture(scope="module")
def gateway():
    platform = LocalPlatform()
    started = [name for name in MODELS if platform._read(name) is None]
    for name in MODELS:
        platform.deploy(MODEL_NAME, name)
    gw = maas.start_gateway(platform)
    yield gw
    maas.stop_gateway()
    for name in started:
        platform.undeploy(name)


@pytest.fixture(scope="module")
def admin(gateway):
    return maas.admin(gateway)


@pytest.fixture
def developer(admin):
    return admin.register_user(f"dev-{uuid.uuid4().hex[:8]}", "qa")


def client(key: str, url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)


def chat(app: dict, model: str = MODELS[0], **kwargs):
    return client(app["key"], app["endpoint"]).chat.completions.create(
        model=model, messages=QUESTION, max_tokens=kwargs.pop("max_tokens", 8), **kwargs)


def ledger_rows(user: str) -> list[dict]:
    with store.connect(postgres.dsn()) as conn:
        return list(conn.execute("SELECT * FROM ledger WHERE user_name = %s ORDER BY id", (user,)))


def wait_for_rows(user: str, count: int, timeout_s: float = 20) -> list[dict]:
    """Ledger rows are written just after the response is sent: wait for them."""
    deadline = time.monotonic() + timeout_s
    rows = ledger_rows(user)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = ledger_rows(user)
    return rows


@pytest.fixture
def app(developer):
    created = developer.create_application("checks", [MODELS[0]])
    assert created["key"].startswith("sk-maas-") and created["endpoint"].endswith("/v1")
    return created


def test_a_key_calls_its_model_and_one_ledger_row_is_written(app, developer):
    reply = chat(app, temperature=0)
    direct = ask(LocalPlatform().get(MODELS[0]), QUESTION[0]["content"], max_tokens=8)
    assert reply.choices[0].message.content.strip() == direct  # the model's own answer, passed through unchanged
    listed = developer.applications()[0]  # the key is never listed again
    assert "key" not in listed and listed["key_hint"] == app["key"][:12]
    usage = developer.usage()
    rows = [row for row in usage if row["application"] == "checks"]
    assert rows and rows[0]["prompt_tokens"] == reply.usage.prompt_tokens
    assert rows[0]["completion_tokens"] == reply.usage.completion_tokens


def test_a_wrong_key_is_401_with_a_clear_body(gateway):
    with pytest.raises(openai.AuthenticationError) as err:
        client("not-a-key", gateway.url).chat.completions.create(model=MODELS[0], messages=QUESTION)
    assert err.value.status_code == 401 and "Unknown API key" in str(err.value)


def test_a_revoked_key_is_401_at_once(app, developer):
    chat(app)
    developer.revoke("checks")
    with pytest.raises(openai.AuthenticationError) as err:
        chat(app)
    assert "was revoked" in str(err.value)


def test_a_model_the_key_may_not_use_is_403(app):
    with pytest.raises(openai.PermissionDeniedError) as err:
        chat(app, model=MODELS[1])
    assert err.value.status_code == 403 and "may use ['parasol-tiny']" in str(err.value)


def test_past_the_rate_limit_is_429(admin, developer):
    admin.set_plan("three-a-minute", rpm=3, tpm=1_000_000, monthly_budget_usd=100)
    app = developer.create_application("limited", [MODELS[0]], plan="three-a-minute")
    for _ in range(3):
        chat(app)
    with pytest.raises(openai.RateLimitError) as err:
        chat(app)
    assert err.value.status_code == 429 and "Limit type: requests" in str(err.value)


def test_past_the_budget_is_402(admin, developer):
    admin.set_plan("pocket-money", rpm=1000, tpm=1_000_000, monthly_budget_usd=2e-5)  # ~2 requests
    app = developer.create_application("frugal", [MODELS[0]], plan="pocket-money")
    answered = 0
    with pytest.raises(openai.APIStatusError) as err:
        for _ in range(10):
            chat(app)
            answered += 1
    assert err.value.status_code == 402 and "monthly budget" in str(err.value)
    assert 1 <= answered < 10


def test_a_blocked_user_is_403_and_a_capped_user_402(admin, developer, app):
    chat(app)
    name = developer.user
    admin.block_user(name)
    with pytest.raises(openai.PermissionDeniedError, match="is blocked"):
        chat(app)
    admin.block_user(name, blocked=False)
    chat(app)
    admin.cap_user(name, monthly_tokens=1)
    with pytest.raises(openai.APIStatusError, match="tokens the platform team allows") as err:
        chat(app)
    assert err.value.status_code == 402
    admin.cap_user(name, None)
    chat(app)


def vllm_token_counters(platform: LocalPlatform) -> int:
    total = 0
    for name in MODELS:
        text = requests.get(platform.get(name).endpoint.removesuffix("/v1") + "/metrics", timeout=10).text
        for counter in ("prompt_tokens_total", "generation_tokens_total"):
            total += int(sum(float(v) for v in re.findall(rf"^vllm:{counter}{{[^}}]*}} (\S+)$", text, re.M)))
    return total


def one_request(app: dict, i: int) -> None:
    model = MODELS[i % 2]
    kind = i % 4
    if kind == 0:
        chat(app, model, max_tokens=6)
    elif kind == 1:  # streamed, usage NOT asked for: must still be billed exactly
        list(chat(app, model, stream=True, max_tokens=12))
    elif kind == 2:
        list(chat(app, model, stream=True, stream_options={"include_usage": True}, max_tokens=9))
    else:
        client(app["key"], app["endpoint"]).completions.create(model=model, prompt="Q: What is 3 + 4?\nA:", max_tokens=5)


def test_a_mixed_run_of_100_concurrent_requests_is_billed_exactly_and_survives_a_restart(developer):
    platform = LocalPlatform()
    app = developer.create_application("mixed", list(MODELS), plan="unlimited")
    before = vllm_token_counters(platform)
    with ThreadPoolExecutor(max_workers=100) as pool:
        list(pool.map(lambda i: one_request(app, i), range(100)))
    used = vllm_token_counters(platform) - before
    name = developer.user
    rows = wait_for_rows(name, 100)
    assert len(rows) == 100 and {row["status"] for row in rows} == {"success"}
    assert {row["model"] for row in rows} == set(MODELS)
    assert sum(row["prompt_tokens"] + row["completion_tokens"] for row in rows) == used

    platform_gateway = maas.start_gateway(platform)
    maas.stop_gateway()
    assert not postgres.running_postgres()
    restarted = maas.start_gateway(platform)
    assert restarted.url == platform_gateway.url
    assert len(ledger_rows(name)) == 100  # nothing lost across restarts of PostgreSQL and the gateway
    chat(app)  # the same key works after the restart
    assert len(wait_for_rows(name, 101)) == 101


def test_the_portal_refuses_bad_requests_clearly(gateway, developer, admin):
    with pytest.raises(maas.PortalError, match="unknown model"):
        developer.create_application("x", ["llama-3-70b"])
    with pytest.raises(maas.PortalError, match="unknown plan 'gold'"):
        developer.create_application("y", [MODELS[0]], plan="gold")
    with pytest.raises(maas.PortalError, match="401"):
        maas.Portal(developer.base_url, "pt-wrong").applications()
    with pytest.raises(maas.PortalError, match="403"):
        maas.Admin(admin.base_url, "sk-wrong").top_consumers()
