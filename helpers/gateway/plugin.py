"""The project's plugin for the LiteLLM proxy: who may call, and what they used.

Runs inside the gateway's own venv (LiteLLM + psycopg). The proxy's config names
``helpers.gateway.plugin.user_api_key_auth`` as its custom auth and
``helpers.gateway.plugin.ledger`` as a callback:

* ``user_api_key_auth`` looks the key up in PostgreSQL: unknown or revoked -> 401,
  blocked user or a model the key may not use -> 403, budget or token cap used up
  -> 402. It hands LiteLLM the plan's rpm/tpm, which LiteLLM enforces (429).
* ``ledger`` writes one row per request: successes with their token counts and
  cost, failures of the model server, refusals and rate limits.
"""
from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone

import psycopg
from fastapi import Request
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from litellm.proxy.common_utils.http_parsing_utils import read_request_body
from psycopg.rows import dict_row

from helpers.gateway import portal, store

DSN_ENV = store.DSN_ENV
MODEL_ROUTES = ("/chat/completions", "/completions", "/embeddings")


class _Database:
    """One async connection per purpose, re-opened when PostgreSQL restarted."""

    def __init__(self) -> None:
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def run(self, work):
        async with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(
                            os.environ[DSN_ENV], autocommit=True, row_factory=dict_row)
                    return await work(self._conn)
                except psycopg.OperationalError:
                    self._conn = None
                    if attempt == 2:
                        raise


_auth_db = _Database()
_ledger_db = _Database()


def _refuse(status: int, kind: str, message: str) -> ProxyException:
    return ProxyException(message=message, type=kind, param="api_key" if status == 401 else None, code=status)


async def _lookup(conn: psycopg.AsyncConnection, key: str) -> dict | None:
    cur = await conn.execute(store.KEY_LOOKUP_SQL, (store.hash_key(key),))
    return await cur.fetchone()


async def _month_usage(conn: psycopg.AsyncConnection, user: str, application: str) -> tuple[float, int]:
    cur = await conn.execute(store.MONTH_USAGE_SQL, (application, user, store.month_start()))
    row = await cur.fetchone()
    return float(row["spend"]), int(row["tokens"])


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """Admit a request or refuse it with a status and a message that says what to do."""
    key = api_key.removeprefix("Bearer ").strip()
    app = await _auth_db.run(lambda conn: _lookup(conn, key)) if key else None
    if app is None:
        raise _refuse(401, "invalid_api_key", "Unknown API key. Use the key shown when you created your "
                      "application (Authorization: Bearer sk-maas-...), or create a new application.")
    if app["revoked_at"] is not None:
        raise _refuse(401, "revoked_api_key", f"This key of application {app['application']!r} was revoked on "
                      f"{app['revoked_at']:%Y-%m-%d %H:%M} UTC. Create a new application to get a new key.")
    if app["blocked"]:
        await _refused_row(app, "-", "blocked")
        raise _refuse(403, "user_blocked", f"User {app['user_name']!r} is blocked by the platform team; "
                      "ask them why and to unblock you.")
    model = await _requested_model(request)
    if model is not None and model not in app["models"]:
        await _refused_row(app, model, "model_not_allowed")
        raise _refuse(403, "model_not_allowed", f"Application {app['application']!r} may use {app['models']}, "
                      f"not {model!r}. Create an application for {model!r} in the portal.")
    spend, tokens = await _auth_db.run(lambda conn: _month_usage(conn, app["user_name"], app["application"]))
    if spend >= app["monthly_budget_usd"]:
        await _refused_row(app, model or "-", "budget_exceeded")
        raise _refuse(402, "budget_exceeded", f"Application {app['application']!r} has spent ${spend:.6g} of its "
                      f"${app['monthly_budget_usd']:.6g} monthly budget (plan {app['plan']!r}). "
                      "Ask the platform team for a bigger plan, or wait for next month.")
    cap = app["monthly_token_cap"]
    if cap is not None and tokens >= cap:
        await _refused_row(app, model or "-", "token_cap_exceeded")
        raise _refuse(402, "token_cap_exceeded", f"User {app['user_name']!r} has used {tokens:,} of the "
                      f"{cap:,} tokens the platform team allows this month.")
    return UserAPIKeyAuth(
        api_key=key, token=store.hash_key(key), key_alias=app["application"], user_id=app["user_name"],
        team_id=app["team"], models=list(app["models"]), rpm_limit=app["rpm"], tpm_limit=app["tpm"],
        metadata={"application": app["application"], "team": app["team"]})


async def _requested_model(request: Request) -> str | None:
    if not request.url.path.endswith(MODEL_ROUTES):
        return None
    body = await read_request_body(request)
    return body.get("model")


async def _refused_row(app: dict, model: str, reason: str) -> None:
    row = (datetime.now(timezone.utc), app["user_name"], app["team"], app["application"], model,
           0, 0, 0.0, f"refused:{reason}", 0.0, None)
    await _ledger_db.run(lambda conn: _insert(conn, row))


async def _insert(conn: psycopg.AsyncConnection, row: tuple) -> None:
    await conn.execute(store.LEDGER_INSERT_SQL, row)


def _who(payload: dict) -> tuple[str, str, str]:
    meta = payload.get("metadata") or {}
    auth_meta = meta.get("user_api_key_auth_metadata") or {}
    return (meta.get("user_api_key_user_id") or "-",
            auth_meta.get("team") or meta.get("user_api_key_team_id") or "-",
            meta.get("user_api_key_alias") or "-")


class UsageLedger(CustomLogger):
    """One ledger row per admitted request: success, failure of the model, or rate limited."""

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time) -> None:
        await self._record(kwargs, "success")

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time) -> None:
        error = (kwargs.get("standard_logging_object") or {}).get("error_information") or {}
        await self._record(kwargs, "rate_limited" if str(error.get("error_code")) == "429" else "failure")

    async def _record(self, kwargs: dict, status: str) -> None:
        payload = kwargs.get("standard_logging_object") or {}
        user, team, application = _who(payload)
        if user == "-":  # refused before it was admitted (bad key): nobody to bill, nothing used
            return
        started = payload.get("startTime") or time.time()
        latency_ms = 1000.0 * ((payload.get("endTime") or started) - started)
        row = (datetime.fromtimestamp(started, timezone.utc), user, team, application,
               payload.get("model_group") or kwargs.get("model") or "-",
               int(payload.get("prompt_tokens") or 0), int(payload.get("completion_tokens") or 0),
               latency_ms, status, float(payload.get("response_cost") or 0.0),
               payload.get("litellm_call_id") or payload.get("id"))
        await _ledger_db.run(lambda conn: _insert(conn, row))


ledger = UsageLedger()
portal.mount()  # the self-service and admin API, on the gateway's own port
