"""The LiteLLM proxy in front of every deployed model, with the project's plugin.

LiteLLM runs from its own venv (``.venv-gateway``), without a database of its
own (FACTS: its database features need downloads a disconnected cluster cannot
make); keys and usage live in our PostgreSQL through ``helpers.gateway.plugin``.
The config is rewritten from the list of deployments; a changed model list
restarts the proxy (20-40 s).
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from .. import prices as price_table
from .. import processes
from ..errors import PlatformError, SetupError
from ..platform.base import Deployment
from ..secretfiles import write_secret
from ..settings import get_settings
from . import postgres
from .store import DSN_ENV, SPILL_ENV


@dataclass(frozen=True)
class Gateway:
    """A running gateway: the one URL every application calls."""

    url: str  # OpenAI-compatible base URL, ending in /v1
    models: tuple[str, ...]
    pid: int


def gateway_python() -> Path:
    return get_settings().root / ".venv-gateway" / "bin" / "python"


def _folder() -> Path:
    return get_settings().state_dir / "gateway"


def _record_path() -> Path:
    return get_settings().run_dir / "gateway.json"


def admin_key() -> str:
    """LiteLLM's admin key: generated once, readable only by you, never needed by attendees."""
    path = _folder() / "master_key"
    if not path.is_file():
        write_secret(path, "sk-admin-" + secrets.token_urlsafe(24))
    return path.read_text().strip()


def render_config(deployments: list[Deployment], prices: Mapping[str, price_table.Price] | None = None) -> dict:
    """LiteLLM's config: one route per deployment, our auth and ledger, each model priced per prompt and
    completion token from the price table (catalog/prices.yaml, or ``prices`` to override it)."""
    model_list = []
    for d in sorted(deployments, key=lambda d: d.name):
        price = price_table.price_of(d.name, prices)
        model_list.append({
            "model_name": d.name,
            "litellm_params": {"model": f"hosted_vllm/{d.name}", "api_base": d.endpoint, "api_key": "none",
                               "input_cost_per_token": round(price.prompt_usd_per_million / 1e6, 12),
                               "output_cost_per_token": round(price.completion_usd_per_million / 1e6, 12)},
        })
    return {
        "model_list": model_list,
        "litellm_settings": {"callbacks": "helpers.gateway.plugin.ledger", "telemetry": False,
                             "drop_params": True, "request_timeout": 600},
        # no retries: a model server that is down answers 503 at once (5 s with LiteLLM's two retries), and
        # a model's own error reaches the client as it is
        "router_settings": {"num_retries": 0},
        # Who may call what is the plugin's alone: every route is on its allowlist (``routes``), with the
        # model taken from where LiteLLM routes by and LiteLLM's fallback and mock options refused; blocks,
        # budgets and caps come from our PostgreSQL. LiteLLM's "common checks" (custom_auth_run_common_checks)
        # would check its own database's teams, users and budgets, which this gateway does not have, a second
        # time (+1 ms a request, scripts/gateway_bench.py). LiteLLM still refuses unsafe bodies (api_base,
        # user_config...) before our auth runs, and enforces the rpm/tpm the plugin hands it.
        "general_settings": {"custom_auth": "helpers.gateway.plugin.user_api_key_auth",
                             "master_key": "os.environ/LITELLM_MASTER_KEY"},
    }


def known_url() -> str | None:
    """The URL the gateway was given (None before its first start): its port is kept in the state folder, so a
    restart (a new model list) keeps the URL every application already has."""
    path = _folder() / "port"
    return f"http://{get_settings().host}:{int(path.read_text())}/v1" if path.is_file() else None


def running_gateway() -> Gateway | None:
    record = processes.live_record(_record_path())
    return Gateway(record["url"], tuple(record["models"]), record["pid"]) if record else None


def start_gateway(deployments: list[Deployment], port: int | None = None, timeout_s: float = 180.0) -> Gateway:
    """Start the gateway for these deployments (or return it if it already serves exactly them)."""
    if not deployments:
        raise PlatformError("the gateway needs at least one deployed model; deploy one first")
    dead = [d.name for d in deployments if not d.ready]
    if dead:
        raise PlatformError(f"these deployments are not running: {dead}; redeploy them first")
    config = render_config(deployments)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    record = processes.live_record(_record_path())
    if record and record.get("config_sha256") == digest:
        postgres.start_postgres()  # repairs a stopped PostgreSQL (same port: the gateway reconnects by itself)
        return running_gateway()
    stop_gateway()
    return _start(config, digest, port, timeout_s)


def _start(config: dict, digest: str, port: int | None, timeout_s: float) -> Gateway:
    python = gateway_python()
    if not python.is_file():
        raise SetupError(f"the gateway venv is missing ({python}); run the set-up first: make setup")
    settings = get_settings()
    dsn = postgres.start_postgres().dsn()
    from . import store  # the tables exist before the first request

    store.init_schema(dsn)
    config_path = _folder() / "litellm.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = processes.sticky_port(_folder() / "port", port, settings.host)
    log = settings.logs_dir / "gateway.log"
    url = f"http://{settings.host}:{port}/v1"
    models = tuple(m["model_name"] for m in config["model_list"])
    env = {DSN_ENV: dsn, "LITELLM_MASTER_KEY": admin_key(), "MAAS_GATEWAY_URL": url,
           "MAAS_GATEWAY_MODELS": ",".join(models), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "PYTHONPATH": str(settings.root),
           SPILL_ENV: str(_folder() / "unwritten-ledger-rows.jsonl"), "LITELLM_LOG": "ERROR", "NO_DOCS": "True"}
    command = [str(python.parent / "litellm"), "--config", str(config_path), "--host", settings.host,
               "--port", str(port), "--num_workers", "1"]
    handle = processes.start(command, log, env)
    processes.write_record(_record_path(), handle, port=port, url=url, models=models, config_sha256=digest)
    _wait_ready(handle, f"http://{settings.host}:{port}", log, timeout_s)
    return Gateway(url, models, handle.pid)


def _wait_ready(handle: processes.ProcessHandle, base: str, log: Path, timeout_s: float) -> None:
    def is_alive() -> bool:
        try:
            return requests.get(f"{base}/health/liveliness", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    outcome = processes.wait_until(handle, is_alive, timeout_s)
    if outcome == "ready":
        return
    if outcome == "exited":
        _record_path().unlink(missing_ok=True)
        raise PlatformError(f"the gateway exited while starting. {processes.describe_log(log)}")
    stop_gateway()
    raise PlatformError(f"the gateway was not ready after {timeout_s:.0f} s. {processes.describe_log(log)}")


def stop_gateway() -> bool:
    """Stop the proxy; keys and usage stay in PostgreSQL."""
    return processes.stop_recorded(_record_path())
