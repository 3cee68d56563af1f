"""The project's plugin for the LiteLLM proxy: who may call what, and what they used.

Runs inside the gateway's own venv (LiteLLM + psycopg). The proxy's config names
``helpers.gateway.plugin.user_api_key_auth`` as its custom auth and
``helpers.gateway.plugin.ledger`` as a callback:

* ``user_api_key_auth`` admits application keys on the offered routes only (``routes``):
  unknown, revoked or expired key -> 401; route not offered -> 404; blocked user or a model
  the key may not use -> 403; budget or token cap used up -> 402; database unreachable -> 503.
  It hands LiteLLM the plan's rpm/tpm, which LiteLLM enforces (429).
* ``ledger`` queues one row per admitted request (vLLM's token counts, cost from the price
  table); a background task writes the queue in batches, each with its hourly rollups.

Speed: keys are cached for ``KEY_CACHE_S`` (a revoke, block or plan change takes effect within
that); each user's month of usage is a counter in memory (loaded once from the rollups,
refreshed every ``COUNTER_REFRESH_S``), never a sum over the ledger per request. An expired entry is
fetched by one query, which every request waiting for it shares (``SharedQueries``).
Budget bound: a request is admitted while the user's counted usage is under the limit, and
its usage is counted as soon as it finishes; so the overshoot is at most what the requests
already in flight when the limit is crossed use.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from fastapi import HTTPException, Request
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from litellm.proxy.common_utils.http_parsing_utils import read_request_body
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from helpers import prices
from helpers.gateway import portal, routes, running_usage, store

KEY_CACHE_S = 1.0  # revoke / block / plan change take effect within this
STALE_KEYS_OK_S = 300.0  # while PostgreSQL is down, keys checked this recently keep working
COUNTER_REFRESH_S = 5.0  # usage written by other gateway processes is seen within this
FLUSH_INTERVAL_S = 0.2  # rows are counted against budgets at once; written this often (one statement per batch)
BATCH_ROWS = 2_000
MAX_QUEUED_ROWS = 100_000  # past this (a long database outage) new requests get 503, none is lost
NO_LIMITER_RPM = 60_000  # a plan allowing this many requests a minute or more skips LiteLLM's rate limiter
log = logging.getLogger("maas.gateway")


class DatabaseDown(RuntimeError):
    """PostgreSQL did not answer; the caller decides between stale data and a 503."""


class Database:
    """A small pool of connections to the gateway's PostgreSQL (survives restarts: a query on a connection
    that a restart broke is tried once more on a new one)."""

    def __init__(self) -> None:
        self._pool: AsyncConnectionPool | None = None

    async def _get(self) -> AsyncConnectionPool:
        if self._pool is None:
            self._pool = AsyncConnectionPool(
                os.environ[store.DSN_ENV], min_size=2, max_size=8, open=False, timeout=1.0,
                kwargs={"autocommit": True, "row_factory": dict_row})
            await self._pool.open(wait=False)
        return self._pool

    async def fetchone(self, sql: str, params) -> dict | None:
        return await self._run(lambda conn: conn.execute(sql, params), fetch=True)

    async def execute(self, sql: str, params) -> None:
        await self._run(lambda conn: conn.execute(sql, params))

    async def executemany(self, sql: str, rows: list) -> None:
        async def work(conn):
            async with conn.cursor() as cur:
                await cur.executemany(sql, rows)
        await self._run(work)

    async def _run(self, work, fetch: bool = False):
        for attempt in (1, 2):  # the pool drops a broken connection when it comes back: the second try gets a new one
            try:
                async with (await self._get()).connection() as conn:
                    result = await work(conn)
                    return await result.fetchone() if fetch else None
            except (psycopg.OperationalError, PoolTimeout) as error:
                if attempt == 2 or isinstance(error, PoolTimeout):
                    raise DatabaseDown(str(error).splitlines()[0] if str(error) else type(error).__name__) from None


class SharedQueries:
    """One query at a time per key: callers that miss the same cache entry together wait for one answer
    (without this, every request in flight when an entry expires sends its own query)."""

    def __init__(self) -> None:
        self._running: dict[object, asyncio.Task] = {}

    async def run(self, key: object, query) -> object:
        """The result of ``query()`` (a coroutine function), shared with every caller asking for ``key``
        meanwhile; a caller that is cancelled does not cancel the others' query."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(query())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: object, task: asyncio.Task) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # seen here: no "exception never retrieved" when every caller left

    def forget(self) -> None:
        """Later callers start a new query (the ones running may have read data that just changed)."""
        self._running.clear()


@dataclass
class Usage:
    spend: float = 0.0
    tokens: int = 0

    def add(self, spend: float, tokens: int, sign: int = 1) -> None:
        self.spend += sign * spend
        self.tokens += sign * tokens


def _row_usage(row: dict) -> tuple[float, int]:
    return row["cost_usd"], row["prompt_tokens"] + row["completion_tokens"]


class UsageCounters:
    """Each user's spend and tokens this month: the rollups (loaded once) plus rows not yet written."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._base: dict[tuple[str, datetime], tuple[float, Usage]] = {}  # from PostgreSQL, plus rows written since
        self._queued: dict[tuple[str, datetime], Usage] = {}  # rows this process has not written yet
        self._flushes = 0
        self._loads = SharedQueries()

    async def used(self, user: str) -> Usage:
        """This month's usage of a user; reloaded from the rollups every COUNTER_REFRESH_S (kept while
        PostgreSQL is away)."""
        key = (user, store.month_start())
        entry = self._base.get(key)
        if entry is None or time.monotonic() - entry[0] > COUNTER_REFRESH_S:
            try:
                entry = await self._loads.run(key, lambda: self._load(key))
            except DatabaseDown:
                if entry is None:
                    raise
        base, queued = entry[1], self._queued.get(key, Usage())
        return Usage(base.spend + queued.spend, base.tokens + queued.tokens)

    async def _load(self, key: tuple[str, datetime]) -> tuple[float, Usage]:
        while True:  # a batch written during the query would be counted twice or not at all: retry
            flushes = self._flushes
            row = await self._db.fetchone(store.MONTH_USAGE_SQL, key)
            if flushes == self._flushes:
                break
        self._base[key] = (time.monotonic(), Usage(float(row["spend"]), int(row["tokens"])))
        return self._base[key]

    def queued(self, row: dict) -> None:
        self._queued.setdefault((row["user_name"], store.month_start(row["ts"])), Usage()).add(*_row_usage(row))

    def written(self, rows: list[dict]) -> None:
        self._flushes += 1
        for row in rows:
            key = (row["user_name"], store.month_start(row["ts"]))
            self._queued.setdefault(key, Usage()).add(*_row_usage(row), sign=-1)
            if key in self._base:
                self._base[key][1].add(*_row_usage(row))


class LedgerWriter:
    """Queues ledger rows and refusal counts; writes them in batches, retrying while PostgreSQL is away."""

    def __init__(self, db: Database, counters: UsageCounters) -> None:
        self._db, self._counters = db, counters
        self._rows: list[dict] = []
        self._refusals: Counter[tuple] = Counter()
        self._recent_ids: deque[str] = deque(maxlen=50_000)
        self._recent_set: set[str] = set()
        self._task: asyncio.Task | None = None
        self._months: set[datetime] = set()  # months whose ledger partition this process has made sure of
        self.last_error: str | None = None

    def add(self, row: dict) -> None:
        """Queue one request's row (a second row for the same request id is ignored)."""
        request_id = row["request_id"]
        if request_id in self._recent_set:
            return
        if len(self._recent_ids) == self._recent_ids.maxlen:
            self._recent_set.discard(self._recent_ids[0])
        self._recent_ids.append(request_id)
        self._recent_set.add(request_id)
        self._rows.append(row)
        self._counters.queued(row)
        self._start()

    def refuse(self, user: str, application: str, reason: str) -> None:
        hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        self._refusals[(hour, user, application, reason)] += 1
        self._start()

    def overloaded(self) -> bool:
        return len(self._rows) >= MAX_QUEUED_ROWS

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._load_spill()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        pause = FLUSH_INTERVAL_S
        try:
            while True:
                await asyncio.sleep(pause)
                try:
                    await self.flush()
                    pause, self.last_error = FLUSH_INTERVAL_S, None
                except DatabaseDown as error:
                    if self.last_error is None:
                        log.error("ledger writes wait for PostgreSQL (%s); %d rows queued", error, len(self._rows))
                    pause, self.last_error = min(5.0, pause * 2 + 0.25), str(error)
        except asyncio.CancelledError:  # the gateway stops: write what is queued, or keep it on disk
            try:
                await asyncio.wait_for(self.flush(), 5.0)
            except (DatabaseDown, asyncio.TimeoutError, asyncio.CancelledError):
                self._spill()
            raise

    async def flush(self) -> None:
        while self._rows:
            batch = self._rows[:BATCH_ROWS]
            for month in {store.month_start(row["ts"]) for row in batch} - self._months:  # a new month's partition
                await self._db.execute(store.ENSURE_MONTH_SQL, (month,))
                self._months.add(month)
            columns = [[row[c] for row in batch] for c in store.WRITTEN_COLUMNS]
            await self._db.execute(store.BATCH_INSERT_SQL, columns)
            del self._rows[:len(batch)]
            self._counters.written(batch)
        if self._refusals:
            counts, self._refusals = self._refusals, Counter()
            try:
                await self._db.executemany(store.REFUSALS_SQL, [(*key, n) for key, n in counts.items()])
            except DatabaseDown:
                self._refusals.update(counts)
                raise

    def _spill_path(self) -> Path | None:
        return Path(os.environ[store.SPILL_ENV]) if os.environ.get(store.SPILL_ENV) else None

    def _spill(self) -> None:
        path = self._spill_path()
        if path is None or not self._rows:
            return
        with path.open("a") as out:
            for row in self._rows:
                out.write(json.dumps({**row, "ts": row["ts"].isoformat()}) + "\n")
        log.error("PostgreSQL unreachable at shutdown: %d ledger rows kept in %s, written at the next start",
                  len(self._rows), path)

    def _load_spill(self) -> None:
        path = self._spill_path()
        if path is None or not path.is_file():
            return
        lines = path.read_text().splitlines()
        path.unlink()
        for line in lines:  # the request ids make a second write of the same row harmless
            row = json.loads(line)
            self.add({**row, "ts": datetime.fromisoformat(row["ts"])})


class KeyCache:
    """Key lookups by hash, cached for KEY_CACHE_S (stale entries serve while PostgreSQL is down)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._entries: dict[str, tuple[float, dict | None]] = {}
        self._queries = SharedQueries()
        self._generation = 0  # forget() counts up: a query that started before it is not cached

    async def lookup(self, key_hash: str) -> dict | None:
        now = time.monotonic()
        cached = self._entries.get(key_hash)
        if cached and now - cached[0] < KEY_CACHE_S:
            return cached[1]
        try:
            return await self._queries.run(key_hash, lambda: self._fetch(key_hash))
        except DatabaseDown:
            if cached and cached[1] is not None and now - cached[0] < STALE_KEYS_OK_S:
                return cached[1]
            raise

    async def _fetch(self, key_hash: str) -> dict | None:
        started, generation = time.monotonic(), self._generation
        row = await self._db.fetchone(store.KEY_LOOKUP_SQL, {"hash": key_hash})
        if generation == self._generation:
            if len(self._entries) > 50_000:
                self._entries.clear()
            self._entries[key_hash] = (started, row)
        return row

    def forget(self) -> None:
        """Drop every cached key (the portal calls this after a revoke, a rotation, a block or a plan change)."""
        self._generation += 1
        self._entries.clear()
        self._queries.forget()


_db = Database()
counters = UsageCounters(_db)
writer = LedgerWriter(_db, counters)
keys = KeyCache(_db)


def _refuse(status: int, kind: str, message: str) -> ProxyException:
    return ProxyException(message=message, type=kind, param="api_key" if status == 401 else None, code=status)


def _unknown_key() -> ProxyException:
    return _refuse(401, "invalid_api_key", "Unknown API key. Use the key shown when you created your "
                   "application (Authorization: Bearer sk-maas-...), or create a new application.")


def _database_down() -> ProxyException:
    return _refuse(503, "gateway_database_unavailable", "The gateway cannot reach its database right now; "
                   "nothing was sent to the model. Retry in a minute. If it lasts, the platform team runs: "
                   "python -m helpers up")


def _key_refusal(app: dict) -> ProxyException | None:
    now = datetime.now(timezone.utc)
    if app["revoked_at"] is not None:
        return _refuse(401, "revoked_api_key", f"This key of application {app['application']!r} was revoked on "
                       f"{app['revoked_at']:%Y-%m-%d %H:%M} UTC. Create a new application to get a new key.")
    if not app["current_key"] and (app["previous_key_valid_until"] is None or app["previous_key_valid_until"] <= now):
        return _refuse(401, "rotated_api_key", f"This key of application {app['application']!r} was replaced by "
                       "a rotated key and its grace period is over. Use the new key.")
    if app["expires_at"] is not None and app["expires_at"] <= now:
        return _refuse(401, "expired_api_key", f"This key of application {app['application']!r} expired on "
                       f"{app['expires_at']:%Y-%m-%d %H:%M} UTC. Rotate it in the portal to get a new key.")
    return None


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """Admit a request or refuse it with a status and a message that says what to do."""
    key = api_key.removeprefix("Bearer ").strip()
    if not key or not key.isascii():
        raise _unknown_key()
    token = store.hash_key(key)
    try:
        app = await keys.lookup(token)
    except DatabaseDown:
        raise _database_down() from None
    if app is None:
        raise _unknown_key()
    refusal = _key_refusal(app)
    if refusal is not None:
        raise refusal
    body = await read_request_body(request) if request.method == "POST" else None
    decision = routes.classify(request.method, request.url.path, body)
    if isinstance(decision, routes.Refusal):
        writer.refuse(app["user_name"], app["application"], decision.kind)
        raise _refuse(decision.status, decision.kind, decision.message)
    if app.get("probe"):  # the instructor's probe: block and model checks only, no budget, cap or ledger row
        if app["blocked"]:
            raise _refuse(403, "user_blocked", f"User {app['user_name']!r} is blocked by the platform team.")
        if decision.model is not None and decision.model not in app["models"]:
            raise _refuse(403, "model_not_allowed", f"this probe key may use {list(app['models'])}")
        return UserAPIKeyAuth(api_key=key, token=token, key_alias=app["application"],
                              user_id=None, models=list(app["models"]), metadata={"probe": True})
    await _check_limits(app, decision.model)
    return UserAPIKeyAuth(
        api_key=key, token=token, key_alias=app["application"], user_id=app["user_name"],
        team_id=app["team"], models=list(app["models"]), **_rate_limits(app),
        metadata={"application": app["application"], "team": app["team"], "plan": app["plan"]})


def _rate_limits(app: dict) -> dict:
    """The plan's rpm and tpm for LiteLLM to enforce (429); none for plans no client can reach here."""
    if app["rpm"] >= NO_LIMITER_RPM:
        return {}
    return {"rpm_limit": app["rpm"], "tpm_limit": app["tpm"]}


async def _check_limits(app: dict, model: str | None) -> None:
    user = app["user_name"]

    def refuse(status: int, kind: str, message: str) -> ProxyException:
        writer.refuse(user, app["application"], kind)
        return _refuse(status, kind, message)

    if app["blocked"]:
        raise refuse(403, "user_blocked", f"User {user!r} is blocked by the platform team; ask them why and to "
                     "unblock you.")
    if model is not None and model not in app["models"]:
        raise refuse(403, "model_not_allowed", f"Application {app['application']!r} may use {list(app['models'])}, "
                     f"not {model!r}. Create an application for {model!r} in the portal.")
    if writer.overloaded():
        raise _database_down()
    try:
        used = await counters.used(user)
    except DatabaseDown:
        raise _database_down() from None
    if used.spend >= app["monthly_budget_usd"]:
        raise refuse(402, "budget_exceeded", f"User {user!r} has spent ${used.spend:.6g} of the "
                     f"${app['monthly_budget_usd']:.6g} monthly budget of plan {app['plan']!r}. Ask the platform "
                     "team for a bigger plan (Portal.request_plan), or wait for next month.")
    cap = app["monthly_token_cap"]
    if cap is not None and used.tokens >= cap:
        raise refuse(402, "token_cap_exceeded", f"User {user!r} has used {used.tokens:,} of the {cap:,} tokens "
                     "the platform team allows this month.")


def _who(payload: dict) -> tuple[str, str, str]:
    meta = payload.get("metadata") or {}
    auth_meta = meta.get("user_api_key_auth_metadata") or {}
    return (meta.get("user_api_key_user_id") or "-",
            auth_meta.get("team") or meta.get("user_api_key_team_id") or "-",
            meta.get("user_api_key_alias") or "-")


def ledger_row(payload: dict, request_id: str, status: str, prompt_tokens: int, completion_tokens: int) -> dict | None:
    """The ledger row of one request from LiteLLM's standard logging payload (None: nobody to bill)."""
    user, team, application = _who(payload)
    if user == "-":
        return None
    started = payload.get("startTime") or time.time()
    first_token = payload.get("completionStartTime")
    streamed = bool(payload.get("stream"))
    model = payload.get("model_group") or payload.get("model") or "-"
    return {"ts": datetime.fromtimestamp(started, timezone.utc), "user_name": user, "team": team,
            "application": application, "model": model, "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens, "latency_ms": 1000.0 * ((payload.get("endTime") or started) - started),
            "status": status, "cost_usd": prices.cost_usd(model, prompt_tokens, completion_tokens),
            "request_id": request_id,
            "ttft_ms": 1000.0 * (first_token - started) if streamed and first_token else None}


def _is_connection_failure(text: str) -> bool:
    return any(s in text for s in ("APIConnectionError", "Cannot connect to host", "Connection refused",
                                   "ConnectError", "ServerDisconnected", "Connection error"))


def _dead_model_message(model: str | None) -> str:
    return (f"Model {model or 'requested'!r} is not answering: its server is down or restarting. Nothing was billed. "
            "Retry in a minute; if it lasts, the platform team checks it with: python -m helpers status")


class ModelUnavailable(Exception):
    """Raised inside a stream whose model server is down: LiteLLM answers it with this status, type and message."""
    status_code, type, param = 503, "model_unavailable", None

    def __init__(self, model: str | None):
        self.message = _dead_model_message(model)
        super().__init__(self.message)


def _name_dead_models() -> None:
    """Answer a dead model server with a 503 that names the model on every route.

    On some routes (``/v1/completions``) LiteLLM ignores what the failure hook returns and answers
    500 "Connection error": its ProxyException handler is wrapped to say which model instead.
    """
    from litellm.proxy.common_utils.http_parsing_utils import _safe_get_request_parsed_body
    from litellm.proxy.proxy_server import app

    original = app.exception_handlers[ProxyException]

    async def handler(request: Request, exc: ProxyException):
        if str(exc.code) == "500" and _is_connection_failure(str(exc.message)):
            decision = routes.classify(request.method, request.url.path, _safe_get_request_parsed_body(request))
            exc.code, exc.type = "503", "model_unavailable"
            exc.message = _dead_model_message(decision.model if isinstance(decision, routes.Admitted) else None)
        return await original(request, exc)

    app.add_exception_handler(ProxyException, handler)
    if app.middleware_stack is not None:  # the server started before the config loaded this plugin
        app.middleware_stack = app.build_middleware_stack()


_hung_up: dict[str, str | None] = {}  # streams whose client left before the end: request id -> stream id
UNMETERED_AFTER_S = 120.0  # no log from LiteLLM this long after a hang-up: write the row ourselves


def _tokens(usage: dict | None) -> tuple[int, int] | None:
    """(prompt, completion) tokens of a usage dict, None without one."""
    if not usage:
        return None
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


async def _bill_if_never_reported(request_id: str, payload: dict) -> None:
    await asyncio.sleep(UNMETERED_AFTER_S)
    if request_id in _hung_up:
        counted = _tokens(running_usage.last_usage(_hung_up.pop(request_id)))
        status = "client_disconnected" if counted else "client_disconnected_unmetered"
        row = ledger_row(payload, request_id, status, *(counted or (0, 0)))
        if row:
            writer.add(row)


def _request_start(request_data: dict) -> float:
    """When LiteLLM received the request (its logging object knows), else now."""
    started = getattr(request_data.get("litellm_logging_obj"), "start_time", None)
    return started.timestamp() if isinstance(started, datetime) else time.time()


def _stream_payload(user_api_key_dict, request_data: dict, first_token: float | None = None) -> dict:
    """What ``ledger_row`` reads, for a stream LiteLLM has not (yet) logged."""
    return {"metadata": {"user_api_key_user_id": user_api_key_dict.user_id,
                         "user_api_key_alias": user_api_key_dict.key_alias,
                         "user_api_key_team_id": user_api_key_dict.team_id},
            "model_group": request_data.get("model"), "startTime": _request_start(request_data),
            "completionStartTime": first_token, "endTime": time.time(), "stream": True}


class UsageLedger(CustomLogger):
    """One ledger row per admitted request, refusals counted, clear errors, and what is left in headers."""

    async def async_pre_call_hook(self, user_api_key_dict, cache, data: dict, call_type):
        """Streams: ask vLLM for its running usage in every chunk (a hang-up is billed vLLM's count, not an
        estimate); LiteLLM passes on only the final usage, to clients that asked for it."""
        if data.get("stream") is True:
            options = dict(data.get("stream_options") or {})
            if options.get("include_usage") is not True:
                data["_litellm_strip_stream_usage"] = True
            data["stream_options"] = {**options, "include_usage": True, "continuous_usage_stats": True}
        return data

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        """Notes a client that hangs up mid-stream and names a model whose server is down.

        After a hang-up LiteLLM closes vLLM's stream (vLLM stops generating) and logs the chunks it read;
        every chunk carried vLLM's running usage (``continuous_usage_stats``, kept aside by
        ``running_usage``), so the row says ``client_disconnected`` and bills vLLM's own count up to the
        last chunk the gateway read.
        """
        request_id = request_data.get("litellm_call_id")
        first_token = stream_id = None
        try:
            async for chunk in response:
                first_token = first_token or time.time()
                stream_id = stream_id or getattr(chunk, "id", None)
                yield chunk
        except Exception as exc:  # a legacy completions stream meets a dead server here, not in the failure hook
            if not _is_connection_failure(f"{type(exc).__name__} {exc}"):
                raise
            row = ledger_row(_stream_payload(user_api_key_dict, request_data), request_id, "failure", 0, 0)
            if row and request_id:
                writer.add(row)  # LiteLLM does not log this failure; if it ever does, the request id dedupes
            raise ModelUnavailable(request_data.get("model")) from exc
        except (GeneratorExit, asyncio.CancelledError):
            if request_id and user_api_key_dict.user_id:
                _hung_up[request_id] = stream_id
                payload = _stream_payload(user_api_key_dict, request_data, first_token)
                asyncio.get_running_loop().create_task(_bill_if_never_reported(request_id, payload))
            raise

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time) -> None:
        payload = kwargs.get("standard_logging_object") or {}
        request_id = kwargs.get("litellm_call_id") or payload.get("id")
        counted = (int(payload.get("prompt_tokens") or 0), int(payload.get("completion_tokens") or 0))
        status = "success"
        if request_id in _hung_up:  # vLLM's own count up to the last chunk read, not LiteLLM's estimate
            status = "client_disconnected"
            counted = _tokens(running_usage.last_usage(_hung_up.pop(request_id))) or counted
        row = ledger_row(payload, request_id, status, *counted)
        if row:
            writer.add(row)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time) -> None:
        payload = kwargs.get("standard_logging_object") or {}
        error = payload.get("error_information") or {}
        if str(error.get("error_code")) == "429":  # refused by the rate limiter: counted, not billed
            user, _, application = _who(payload)
            if user != "-":
                writer.refuse(user, application, "rate_limited")
            return
        row = ledger_row(payload, kwargs.get("litellm_call_id") or payload.get("id"), "failure", 0, 0)
        if row:
            writer.add(row)

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str=None):
        """A model server that is down: name the model and say what to do (instead of a socket error)."""
        if _is_connection_failure(f"{type(original_exception).__name__} {original_exception}"):
            return HTTPException(503, detail=_dead_model_message(request_data.get("model")))
        return None

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None,
                                                    litellm_call_info=None):
        """What the caller has left this month, on every answer (the 429/402 should not be the only signal)."""
        meta = user_api_key_dict.metadata or {}
        user = user_api_key_dict.user_id
        if not user or "plan" not in meta:
            return None
        try:
            used = await counters.used(user)
            app = await keys.lookup(user_api_key_dict.token)
        except DatabaseDown:
            return None
        if app is None:
            return None
        left = store.usage_left(app, used.spend, used.tokens)
        headers = {"x-maas-plan": str(left["plan"]), "x-maas-budget-left-usd": f"{left['budget_left_usd']:.6f}"}
        if left["tokens_left"] is not None:
            headers["x-maas-tokens-left"] = str(left["tokens_left"])
        return headers


ledger = UsageLedger()
running_usage.install()
_name_dead_models()
portal.mount(on_change=keys.forget)  # the self-service and admin API, on the gateway's own port
