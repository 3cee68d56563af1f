"""The MaaS gateway for real: LiteLLM + our plugin + PostgreSQL in front of two vLLM servers."""
from __future__ import annotations

import json

import re
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests

from helpers import maas
from helpers.client import ask
from helpers.gateway import postgres, proxy, store
from helpers.platform import LocalPlatform
from tests.integration.servers import SECOND_MODEL, gateway_serving

pytestmark = pytest.mark.integration

MODELS = ("parasol-tiny", SECOND_MODEL)  # two deployments: two models behind one gateway
QUESTION = [{"role": "user", "content": "What is 41 + 7?"}]


@pytest.fixture(scope="module")
def gateway():
    with gateway_serving(MODELS) as gw:
        yield gw


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
    wait_for_rows(developer.user, 1)
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
    admin.grant_plan(developer.user, "three-a-minute")
    app = developer.create_application("limited", [MODELS[0]])
    for _ in range(3):
        chat(app)
    with pytest.raises(openai.RateLimitError) as err:
        chat(app)
    assert err.value.status_code == 429 and "Limit type: requests" in str(err.value)


def test_past_the_budget_is_402(admin, developer):
    admin.set_plan("pocket-money", rpm=1000, tpm=1_000_000, monthly_budget_usd=4e-5)  # about three requests
    admin.grant_plan(developer.user, "pocket-money")
    app = developer.create_application("frugal", [MODELS[0]])
    answered = 0
    with pytest.raises(openai.APIStatusError) as err:
        for _ in range(50):
            chat(app)
            answered += 1
    assert err.value.status_code == 402 and "monthly budget" in str(err.value)
    assert 1 <= answered < 50
    second = developer.create_application("frugal-2", [MODELS[0]])  # a new application starts no new budget
    with pytest.raises(openai.APIStatusError, match="monthly budget"):
        chat(second)


def test_concurrent_requests_overshoot_the_budget_by_at_most_the_requests_in_flight(admin, developer):
    """The stated bound: admitted while the counted spend is under the budget, counted when finished."""
    in_flight = 8
    admin.set_plan("pocket-money-2", rpm=1000, tpm=1_000_000, monthly_budget_usd=4e-5)  # about three requests
    admin.grant_plan(developer.user, "pocket-money-2")
    app = developer.create_application("rush", [MODELS[0]])

    def attempt(_: int) -> int:
        try:
            chat(app)
            return 200
        except openai.APIStatusError as error:
            return error.status_code

    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        statuses = list(pool.map(attempt, range(40)))
    assert set(statuses) == {200, 402} and statuses.count(200) < 40
    rows = wait_for_rows(developer.user, statuses.count(200))
    assert len(rows) == statuses.count(200)  # every admitted request billed, refused ones not
    spend, largest = sum(r["cost_usd"] for r in rows), max(r["cost_usd"] for r in rows)
    assert spend - 4e-5 <= in_flight * largest  # the overshoot: at most the requests in flight


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


def vllm_prompt_and_generated(platform: LocalPlatform, name: str) -> tuple[int, int]:
    """vLLM's own prompt and generated token counters (its /metrics), summed over labels."""
    text = requests.get(platform.get(name).endpoint.removesuffix("/v1") + "/metrics", timeout=10).text
    prompt, generated = (int(sum(float(v) for v in re.findall(rf"^vllm:{counter}{{[^}}]*}} (\S+)$", text, re.M)))
                         for counter in ("prompt_tokens_total", "generation_tokens_total"))
    return prompt, generated


def vllm_counters_of(platform: LocalPlatform, name: str) -> int:
    return sum(vllm_prompt_and_generated(platform, name))


def vllm_token_counters(platform: LocalPlatform) -> int:
    """Prompt and generated tokens of every model, as vLLM counted them."""
    return sum(vllm_counters_of(platform, name) for name in MODELS)


def one_request(app: dict, i: int) -> None:
    model = MODELS[i % 2]
    kind = i % 4
    if kind == 0:
        chat(app, model, max_tokens=6)
    elif kind == 1:  # streamed, usage NOT asked for: must still be billed exactly
        list(chat(app, model, stream=True, max_tokens=12))
    elif kind == 2:
        list(chat(app, model, stream=True, stream_options={"include_usage": True}, max_tokens=9))
    elif i % 8 == 3:
        client(app["key"], app["endpoint"]).completions.create(model=model, prompt="Q: What is 3 + 4?\nA:", max_tokens=5)
    else:  # legacy completions, streamed, usage not asked for: billed with vLLM's count too
        list(client(app["key"], app["endpoint"]).completions.create(model=model, prompt="Q: What is 5 + 1?\nA:",
                                                                    max_tokens=7, stream=True))


def test_a_mixed_run_of_100_concurrent_requests_is_billed_exactly_and_survives_a_restart(developer):
    platform = LocalPlatform()
    maas.admin(maas.start_gateway(platform)).grant_plan(developer.user, "unlimited")
    app = developer.create_application("mixed", list(MODELS))
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
    with pytest.raises(maas.PortalError, match="no '/'"):
        developer.create_application("a/b", [MODELS[0]])
    with pytest.raises(maas.PortalError, match="401"):
        maas.Portal(developer.base_url, "pt-wrong").applications()
    with pytest.raises(maas.PortalError, match="403"):
        maas.Admin(admin.base_url, "sk-wrong").top_consumers()


def post(gateway, path: str, key: str, body: dict | None = None, method: str = "POST") -> requests.Response:
    return requests.request(method, gateway.url.removesuffix("/v1") + path, json=body, timeout=30,
                            headers={"Authorization": f"Bearer {key}"})


BYPASSES = [  # route, body: a key for MODELS[0] trying to reach MODELS[1]
    (f"/openai/deployments/{MODELS[1]}/chat/completions", {"model": MODELS[0]}),  # found at 0478c47
    (f"/engines/{MODELS[1]}/chat/completions", {"model": MODELS[0]}),  # found at 0478c47
    (f"/openai/deployments/{MODELS[1]}/completions", {}),
    (f"/engines/{MODELS[1]}/embeddings", {}),
    ("/v1/responses", {"model": MODELS[1]}),
    ("/v1/messages", {"model": MODELS[1]}),
    ("/vllm/v1/chat/completions", {"model": MODELS[1]}),
    ("/hosted_vllm/v1/chat/completions", {"model": MODELS[1]}),
    ("/v1/chat/completions", {"model": MODELS[1]}),
    ("/chat/completions", {"model": MODELS[1]}),
    ("/v1/completions", {"model": MODELS[1]}),
    # LiteLLM's client-side fallbacks: the granted model fails (max_tokens past its context), the router would
    # call the other one with the fallback's own max_tokens
    ("/v1/chat/completions", {"model": MODELS[0], "max_tokens": 100_000,
                              "fallbacks": [{"model": MODELS[1], "max_tokens": 4}]}),
    ("/v1/chat/completions", {"model": MODELS[0], "max_tokens": 100_000,
                              "router_settings_override": {"fallbacks": [{"model": MODELS[1], "max_tokens": 4}]}}),
    # LiteLLM's mock answer: 200 without any model, billed LiteLLM's estimate instead of vLLM's count
    ("/v1/chat/completions", {"model": MODELS[0], "mock_response": "4"}),
]


BYPASS_IDS = [path + "".join(f" {option}" for option in body if option != "model") for path, body in BYPASSES]


@pytest.mark.parametrize("path,body", BYPASSES, ids=BYPASS_IDS)
def test_no_route_reaches_a_model_the_key_was_not_granted(gateway, app, path, body):
    platform = LocalPlatform()
    before = vllm_counters_of(platform, MODELS[1])
    payload = {"messages": QUESTION, "prompt": "2 + 2 =", "input": "hi", "max_tokens": 4, **body}
    response = post(gateway, path, app["key"], payload)
    assert response.status_code in (400, 403, 404), response.text
    body = response.json()  # says why: our refusal, or FastAPI's own 404 where LiteLLM has no such route
    assert body.get("error", {}).get("message") or body.get("detail") == "Not Found"
    time.sleep(0.5)
    assert vllm_counters_of(platform, MODELS[1]) == before  # the model never saw it


def test_plans_are_granted_by_admins_not_chosen(gateway, admin, developer):
    escalation = post(gateway, "/portal/applications", developer.token,
                      {"name": "greedy", "models": [MODELS[0]], "plan": "unlimited"})
    assert escalation.status_code == 400 and "granted by the platform team" in escalation.json()["detail"]
    assert developer.me()["plan"] == "standard"
    request = developer.request_plan("unlimited", "load tests for the support bot")
    assert request["plan"] == "unlimited"
    assert any(r["id"] == request["id"] for r in admin.plan_requests())
    with pytest.raises(maas.PortalError, match="403"):
        maas.Admin(admin.base_url, developer.token).grant_plan(developer.user, "unlimited")  # not an admin
    admin.grant_plan(developer.user, "unlimited")
    assert developer.me()["plan"] == "unlimited"
    assert not any(r["id"] == request["id"] for r in admin.plan_requests())


def test_a_rotated_key_keeps_working_for_its_grace_period_and_an_expired_key_stops(gateway, developer):
    first = developer.create_application("rotating", [MODELS[0]], expires_in_days=30)
    assert first["expires_at"]
    second = developer.rotate("rotating")
    assert second["key"] != first["key"] and second["key_hint"] == second["key"][:12]
    chat(first)  # the old key, in its grace period
    chat(second)
    with store.connect(postgres.dsn()) as conn:
        conn.execute("UPDATE applications SET expires_at = now() - interval '1 minute' "
                     "WHERE user_name = %s AND name = 'rotating'", (developer.user,))
    time.sleep(1.2)  # the key cache
    with pytest.raises(openai.AuthenticationError, match="expired"):
        chat(second)


def test_what_is_left_comes_back_in_headers(gateway, developer, app):
    response = post(gateway, "/v1/chat/completions", app["key"], {"model": MODELS[0], "messages": QUESTION,
                                                                 "max_tokens": 4})
    assert response.status_code == 200
    assert response.headers["x-maas-plan"] == "standard"
    assert 0 < float(response.headers["x-maas-budget-left-usd"]) <= 5.0
    assert developer.me()["budget_left_usd"] <= 5.0


def test_refusals_are_counted_not_written_row_by_row(gateway, admin, developer, app):
    admin.block_user(developer.user)
    time.sleep(1.2)
    for _ in range(20):
        with pytest.raises(openai.PermissionDeniedError):
            chat(app)
    time.sleep(0.5)
    assert ledger_rows(developer.user) == []
    assert sum(r["requests"] for r in developer.refusals() if r["reason"] == "user_blocked") == 20


@pytest.mark.parametrize("bearer", ["sk-maas-é", "ключ"])
def test_a_non_ascii_key_is_a_clear_401(gateway, bearer):
    raw = requests.post(gateway.url + "/chat/completions", timeout=30, json={"model": MODELS[0], "messages": QUESTION},
                        headers={"Authorization": ("Bearer " + bearer).encode()})
    assert raw.status_code == 401
    portal = requests.get(gateway.url.removesuffix("/v1") + "/portal/applications", timeout=30,
                          headers={"Authorization": ("Bearer " + bearer).encode()})
    assert portal.status_code == 401


def test_the_admin_api_is_closed_when_no_admin_key_is_set():
    code = ("import asyncio, os; os.environ['LITELLM_MASTER_KEY'] = ''\n"
            "from fastapi import HTTPException\nfrom helpers.gateway import portal\n"
            "try:\n    asyncio.run(portal.admin('Bearer '))\nexcept HTTPException as e:\n    print(e.status_code)\n")
    out = subprocess.run([str(proxy.gateway_python()), "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(Path(__file__).parents[2]), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "503", out.stderr[-2000:]


def test_the_gateway_keeps_working_across_a_postgresql_restart(gateway, admin, developer, app):
    chat(app)
    wait_for_rows(developer.user, 1)
    port = postgres.running_postgres().port
    postgres.stop_postgres()
    answered = 0
    for _ in range(5):  # keys and counters are in memory: served, rows queued
        chat(app)
        answered += 1
    assert maas.start_gateway(LocalPlatform()).url == gateway.url  # what `python -m helpers up` does: repairs
    assert postgres.running_postgres().port == port  # PostgreSQL is back where the gateway looks for it
    rows = wait_for_rows(developer.user, 1 + answered)
    assert len(rows) == 1 + answered and {r["status"] for r in rows} == {"success"}
    chat(app)  # and new requests are written at once again
    assert len(wait_for_rows(developer.user, 2 + answered)) == 2 + answered


def test_a_client_that_hangs_up_mid_stream_is_billed_what_vllm_generated(gateway, developer, app):
    """The row bills vLLM's own running count (prompt exact), never LiteLLM's estimate of the text it saw.

    LiteLLM closes vLLM's stream after a hang-up (vLLM stops) or, when vLLM was faster, reads it to
    its end: either way the row's completion tokens lie between what the client received and what
    vLLM generated (vLLM may have generated a few tokens the gateway never read).
    """
    import httpx

    platform = LocalPlatform()
    before = vllm_prompt_and_generated(platform, MODELS[0])
    body = {"model": MODELS[0], "messages": QUESTION, "max_tokens": 120, "stream": True, "ignore_eos": True}
    received = 0
    with httpx.stream("POST", app["endpoint"] + "/chat/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {app['key']}"}) as response:
        for line in response.iter_lines():
            received += line.startswith('data: {"id"') and '"content":"' in line and '"content":""' not in line
            if received >= 8:
                break  # hang up
    rows = wait_for_rows(developer.user, 1)
    time.sleep(1)
    rows = ledger_rows(developer.user)
    prompt, generated = (after - start for after, start in zip(vllm_prompt_and_generated(platform, MODELS[0]), before))
    assert len(rows) == 1 and rows[0]["status"] == "client_disconnected" and rows[0]["ttft_ms"] is not None
    print(f"hang-up after {received} tokens: ledger {rows[0]['prompt_tokens']} + {rows[0]['completion_tokens']} "
          f"tokens, vLLM /metrics {prompt} + {generated}")
    assert rows[0]["prompt_tokens"] == prompt  # vLLM's count, not LiteLLM's tokenizer's
    assert received <= rows[0]["completion_tokens"] <= generated


def test_a_model_server_that_died_gets_a_503_that_names_it(gateway, admin, developer):
    app = developer.create_application("orphan", [MODELS[1]])
    LocalPlatform().undeploy(MODELS[1])  # the gateway still routes to it: the last test of this module
    with pytest.raises(openai.APIStatusError) as err:
        chat(app, model=MODELS[1])
    assert err.value.status_code == 503
    assert f"Model '{MODELS[1]}' is not answering" in str(err.value) and "ssl" not in str(err.value).lower()
    for stream in (False, True):  # every route and streams too (legacy streams fail inside the stream)
        for path, body in (("/v1/completions", {"prompt": "Q: 1 + 1?\nA:"}),
                           ("/v1/chat/completions", {"messages": [{"role": "user", "content": "1 + 1?"}]})):
            answer = post(gateway, path, app["key"], {"model": MODELS[1], "max_tokens": 4, "stream": stream, **body})
            assert answer.status_code == 503, (path, stream, answer.text)
            assert answer.json()["error"]["message"].startswith(f"Model '{MODELS[1]}' is not answering"), answer.text
    rows = wait_for_rows(developer.user, 5)
    assert [r["status"] for r in rows] == ["failure"] * 5, rows


def test_lm_eval_runs_through_the_gateway_with_a_key_and_every_token_is_billed(gateway, developer):
    from helpers import evaluate
    from helpers.models import ensure_tiny_model

    platform, tokenizer = LocalPlatform(), ensure_tiny_model().path
    app = developer.create_application("evaluation", [MODELS[0]])
    before = vllm_counters_of(platform, MODELS[0])
    through = evaluate.evaluate_through_gateway(gateway.url, MODELS[0], app["key"], tokenizer, limit=12)
    used = vllm_counters_of(platform, MODELS[0]) - before
    chat = evaluate.evaluate_through_gateway(gateway.url, MODELS[0], app["key"], tokenizer, limit=4, chat=True)
    direct = evaluate.evaluate_served(platform.get(MODELS[0]), tokenizer, limit=12)
    assert through == direct  # the same scores: text prompts through the gateway, token IDs direct
    assert 0.0 <= chat["exact_match"] <= 1.0
    rows = wait_for_rows(developer.user, 5)
    time.sleep(1)
    rows = ledger_rows(developer.user)
    assert {r["status"] for r in rows} == {"success"}
    completions_rows = rows[:len(rows) - 4]  # the chat run made 4 requests, after the completions run
    assert sum(r["prompt_tokens"] + r["completion_tokens"] for r in completions_rows) == used


# -- admin scopes: an attendee's admin key on a shared cluster (helpers.gateway.scopes) -------------------------

def refused(call, status: int = 403) -> str:
    """The gateway's message for a refused admin call (its status checked)."""
    with pytest.raises(maas.PortalError, match=f"-> {status}") as error:
        call()
    return str(error.value)


@pytest.fixture
def scoped(admin):
    """Two attendees' scoped admin keys, issued by the instructor (the gateway's admin key), by scope name."""
    tag = uuid.uuid4().hex[:8]
    keys = {f"{who}-{tag}": maas.RoomAdmin(admin.base_url, admin.scope_key(f"{who}-{tag}")) for who in ("alice", "bob")}
    yield keys
    for name in keys:
        admin.revoke_scope(name)


def test_a_scoped_admin_key_manages_its_own_users_and_plans(gateway, scoped, admin):
    alice = list(scoped.values())[0]
    assert alice.token.startswith("sk-scope-")
    mine = alice.register_user(f"alice-dev-{uuid.uuid4().hex[:6]}", "parasol-support")  # the team is free
    plan = f"alice-three-per-minute-{uuid.uuid4().hex[:6]}"
    alice.set_plan(plan, rpm=3, tpm=100_000, monthly_budget_usd=10)
    alice.set_plan(plan, rpm=4, tpm=100_000, monthly_budget_usd=10)  # its own plan: changed
    alice.grant_plan(mine.user, plan)
    alice.grant_plan(mine.user, "unlimited")  # a platform plan: grantable, not changeable
    app = mine.create_application("bot", [MODELS[0]])
    chat(app)
    wait_for_rows(mine.user, 1)
    assert {row["user_name"] for row in alice.top_consumers(50)} == {mine.user}  # its users only
    assert {row["user_name"] for row in alice.usage()} == {mine.user}
    assert [user["name"] for user in alice.users()] == [mine.user]
    mine.request_plan(plan, "load tests")
    assert [r["user_name"] for r in alice.plan_requests()] == [mine.user]
    again = alice.register_user(mine.user, "parasol-support")  # run again: the same user, a new portal token
    assert again.user == mine.user and again.token != mine.token
    mine = again
    alice.block_user(mine.user)
    with pytest.raises(openai.PermissionDeniedError):
        chat(mine.create_application("second", [MODELS[0]]))
    alice.block_user(mine.user, False)
    alice.cap_user(mine.user, None)
    assert {row["user_name"] for row in admin.top_consumers(1000)} >= {mine.user}  # the instructor sees everyone


def test_a_scoped_admin_key_is_refused_everything_else_with_a_clear_403(gateway, scoped, admin, developer):
    (alice_scope, alice), (_, bob) = scoped.items()
    theirs = alice.register_user(f"alice-dev-{uuid.uuid4().hex[:6]}", "qa")
    plan = f"alice-pocket-money-{uuid.uuid4().hex[:6]}"
    alice.set_plan(plan, rpm=1_000, tpm=1_000_000, monthly_budget_usd=0.00002)
    other = f"scope '{alice_scope}'"
    # another attendee's user and plan
    for call in (lambda: bob.cap_user(theirs.user, 1), lambda: bob.block_user(theirs.user),
                 lambda: bob.grant_plan(theirs.user, "unlimited"), lambda: bob.register_user(theirs.user, "qa")):
        assert f"user '{theirs.user}' belongs to {other}" in refused(call)
    assert "is not this scope's" in refused(lambda: bob.set_plan(plan, rpm=1, tpm=1, monthly_budget_usd=0))
    assert f"plan '{plan}' belongs to {other}" in refused(lambda: bob.register_user(f"bob-{uuid.uuid4().hex[:6]}",
                                                                                   "qa", plan=plan))
    # the platform team's users and plans
    assert "belongs to the platform team" in refused(lambda: alice.cap_user(developer.user, 1))
    assert "belongs to the platform team" in refused(lambda: alice.register_user(developer.user, "qa"))
    assert "is not this scope's" in refused(lambda: alice.set_plan("standard", rpm=1, tpm=1, monthly_budget_usd=0))
    # a name registered by an attendee before the instructor registered that person: the instructor's now
    squatted = alice.register_user(f"carol-{uuid.uuid4().hex[:6]}", "qa").user
    admin.register_user(squatted, "workshop")
    assert "belongs to the platform team" in refused(lambda: alice.block_user(squatted))
    # the instructor's calls
    for call in (lambda: alice.probe_key(theirs.user, [MODELS[0]]), lambda: alice.revoke_all(theirs.user),
                 lambda: alice.forget_usage(theirs.user), lambda: alice.active_applications(theirs.user),
                 lambda: alice.revoke_probe_key(theirs.user), lambda: alice.scope_key("mallory"),
                 lambda: alice.revoke_scope("bob")):
        assert "this call needs the gateway's admin key" in refused(call)
    assert "-> 403" in refused(alice.ledger_csv)
    # nothing changed: the platform plan, the other user
    standard = next(p for p in store.plans(postgres.dsn()) if p["name"] == "standard")
    assert (standard["rpm"], standard["admin_scope"]) == (600, None)
    assert next(u for u in admin.users() if u["name"] == developer.user)["monthly_token_cap"] is None
    # a scoped admin key is not an application key, and a revoked one is nobody's
    with pytest.raises(openai.AuthenticationError):
        client(alice.token, gateway.url).chat.completions.create(model=MODELS[0], messages=QUESTION, max_tokens=2)
    assert admin.revoke_scope(alice_scope)
    assert "admin endpoints need" in refused(alice.top_consumers)
