"""The gateway under load with faults (opt-in: pytest -m faults; a few minutes).

300 mixed requests (chat, streamed chat, legacy completions, streamed legacy) to two models while
PostgreSQL restarts once and one model server is killed and started again. Afterwards the ledger
holds, for every request that reached vLLM, exactly the tokens vLLM reported to the client, and
the ledger's sums equal vLLM's /metrics counters (scraped before the kill and after the restart);
every other request got a clear status.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests

from helpers import maas
from helpers.gateway import postgres, store
from helpers.models import MODEL_NAME
from helpers.platform import LocalPlatform

pytestmark = [pytest.mark.integration, pytest.mark.faults]
MODELS = ("parasol-tiny", "parasol-tiny-2")
PHASE_REQUESTS = 100


def counters(platform: LocalPlatform, name: str) -> int:
    text = requests.get(platform.get(name).endpoint.removesuffix("/v1") + "/metrics", timeout=10).text
    return int(sum(float(v) for c in ("prompt_tokens_total", "generation_tokens_total")
                   for v in re.findall(rf"^vllm:{c}{{[^}}]*}} (\S+)$", text, re.M)))


def one_request(key: str, url: str, i: int, models: tuple[str, ...]) -> tuple[str, int, int]:
    """(model, HTTP status, tokens vLLM reported to the client: 0 when refused)."""
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)
    model = models[i % len(models)]
    try:
        kind = i % 4
        if kind == 0:
            usage = client.chat.completions.create(model=model, max_tokens=6, messages=[
                {"role": "user", "content": f"What is {i} + 1?"}]).usage
        elif kind == 1:
            chunks = list(client.chat.completions.create(model=model, max_tokens=9, stream=True,
                          stream_options={"include_usage": True},
                          messages=[{"role": "user", "content": f"What is {i} + 2?"}]))
            usage = chunks[-1].usage
        elif kind == 2:
            usage = client.completions.create(model=model, prompt=f"Q: What is {i} + 3?\nA:", max_tokens=5).usage
        else:
            chunks = list(client.completions.create(model=model, prompt=f"Q: What is {i} + 4?\nA:", max_tokens=7,
                                                    stream=True, stream_options={"include_usage": True}))
            usage = chunks[-1].usage
        return model, 200, usage.prompt_tokens + usage.completion_tokens
    except openai.APIStatusError as error:
        assert error.status_code in (503,) and ("not answering" in str(error) or "database" in str(error)), error
        return model, error.status_code, 0


def run_phase(key: str, url: str, start: int, models: tuple[str, ...]) -> list[tuple[str, int, int]]:
    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(lambda i: one_request(key, url, i, models), range(start, start + PHASE_REQUESTS)))


def test_the_ledger_stays_exact_through_a_postgresql_restart_and_a_model_server_restart():
    platform = LocalPlatform()
    started = [name for name in MODELS if platform._read(name) is None]
    for name in started:
        platform.deploy(MODEL_NAME, name)
    try:
        gateway = maas.start_gateway(platform)
        user = f"faults-{uuid.uuid4().hex[:6]}"
        app = maas.admin(gateway).register_user(user, "qa", plan="unlimited").create_application("load", list(MODELS))
        before = {name: counters(platform, name) for name in MODELS}

        restart = threading.Timer(3.0, lambda: (postgres.stop_postgres(), time.sleep(2), postgres.start_postgres()))
        restart.start()  # phase 1: both models, PostgreSQL restarts in the middle
        results = run_phase(app["key"], gateway.url, 0, MODELS)
        restart.join()

        before_kill = counters(platform, MODELS[1])  # phase 2: MODELS[1] killed, then started again
        platform.undeploy(MODELS[1])
        results += run_phase(app["key"], gateway.url, PHASE_REQUESTS, MODELS)
        platform.deploy(MODEL_NAME, MODELS[1])
        results += run_phase(app["key"], gateway.url, 2 * PHASE_REQUESTS, MODELS)  # phase 3: all back

        vllm_used = {MODELS[0]: counters(platform, MODELS[0]) - before[MODELS[0]],
                     MODELS[1]: (before_kill - before[MODELS[1]]) + counters(platform, MODELS[1])}
        time.sleep(2)
        with store.connect(postgres.dsn()) as conn:
            rows = list(conn.execute("SELECT model, status, prompt_tokens + completion_tokens AS tokens "
                                     "FROM ledger WHERE user_name = %s", (user,)))
        statuses = Counter(status for _, status, _ in results)
        phases = [dict(Counter(status for _, status, _ in results[k:k + PHASE_REQUESTS]))
                  for k in range(0, len(results), PHASE_REQUESTS)]
        print(f"\nstatuses by phase: {phases}; ledger rows: {Counter(r['status'] for r in rows)}")
        print(f"vLLM /metrics tokens: {vllm_used}; ledger: "
              f"{ {m: sum(r['tokens'] for r in rows if r['model'] == m) for m in MODELS} }")
        assert phases[0] == {200: PHASE_REQUESTS}  # PostgreSQL's restart costs no request
        assert phases[1] == {200: PHASE_REQUESTS // 2, 503: PHASE_REQUESTS // 2}  # only the dead model's
        assert phases[2] == {200: PHASE_REQUESTS}  # the restarted server is used again
        assert len(rows) == len(results) == 3 * PHASE_REQUESTS  # one row per admitted request, none lost
        assert sum(1 for r in rows if r["status"] == "success") == statuses[200]
        for model in MODELS:
            client_seen = sum(tokens for m, status, tokens in results if m == model and status == 200)
            ledger = sum(r["tokens"] for r in rows if r["model"] == model and r["status"] == "success")
            assert ledger == client_seen == vllm_used[model], model
    finally:
        maas.stop_gateway()
        for name in started:
            platform.undeploy(name)
