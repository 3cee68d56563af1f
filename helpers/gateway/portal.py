"""The small self-service and admin HTTP API, served by the gateway under /portal.

Self-service (``Authorization: Bearer <portal token>``): create an application with a key
for models (on the plan the platform team granted), list, rotate or revoke keys, ask for
another plan, see my usage and what I have left.
Admin (``Authorization: Bearer <gateway admin key>``): register users, grant plans, answer
plan requests, top consumers, cap or block a user, create or change a plan. The same calls with a
scoped admin key (``scopes``: an attendee's, on a shared cluster) reach the users and plans of that
scope only; the instructor's calls (probe keys, revoke-all, forget-usage, the ledger, scopes) need
the gateway's admin key.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from helpers.gateway import scopes, store, web

router = APIRouter(prefix="/portal", tags=["portal"])
_on_change: Callable[[], None] = lambda: None  # the plugin forgets its cached keys on every change


def _dsn() -> str:
    return os.environ[store.DSN_ENV]


def _bearer(authorization: str | None) -> str:
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not authorization or not authorization.startswith("Bearer ") or not token or not token.isascii():
        raise HTTPException(401, "send your portal token as 'Authorization: Bearer pt-...'")
    return token


async def current_user(authorization: str | None = Header(default=None)) -> str:
    user = await run_in_threadpool(store.user_for_portal_token, _dsn(), _bearer(authorization))
    if user is None:
        raise HTTPException(401, "unknown portal token; ask the platform team for a new one")
    return user


async def admin(authorization: str | None = Header(default=None)) -> str | None:
    """Who administers: None for the gateway's admin key (everything), else the scope of a scoped admin key."""
    expected = os.environ.get("LITELLM_MASTER_KEY", "")
    if not expected:  # never fail open
        raise HTTPException(503, "the gateway has no admin key configured; admin endpoints are off")
    token = _bearer(authorization)
    if secrets.compare_digest(token.encode(), expected.encode()):
        return None
    scope = await run_in_threadpool(scopes.scope_of_key, _dsn(), token)
    if scope is None:
        raise HTTPException(403, "admin endpoints need the gateway's admin key or a scoped admin key")
    return scope


async def full_admin(scope: str | None = Depends(admin)) -> None:
    """The instructor's calls: the gateway's admin key only."""
    if scope is not None:
        raise HTTPException(403, f"this admin key manages the users of scope {scope!r} only; this call needs the "
                                 "gateway's admin key (the instructor's)")


def _served_models() -> list[str]:
    return [m for m in os.environ.get("MAAS_GATEWAY_MODELS", "").split(",") if m]


def _public(app: store.Application) -> dict:
    return {"name": app.name, "models": app.models, "plan": app.plan, "key_hint": app.key_hint,
            "created_at": app.created_at.isoformat(),
            "expires_at": app.expires_at.isoformat() if app.expires_at else None,
            "revoked_at": app.revoked_at.isoformat() if app.revoked_at else None}


async def _call(function, *args, changes: bool = False):
    try:
        result = await run_in_threadpool(function, *args)
    except scopes.OutOfScope as error:
        raise HTTPException(403, str(error)) from None
    except store.StoreError as error:
        raise HTTPException(400, str(error)) from None
    if changes:
        _on_change()
    return result


# --- self-service ---------------------------------------------------------------------

class NewApplication(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    models: list[str] = Field(min_length=1)
    plan: str | None = None  # only to check: plans are granted by the platform team
    expires_in_days: float | None = Field(default=None, gt=0)


def _with_key(app: store.Application) -> dict:
    return {**_public(app), "endpoint": os.environ.get("MAAS_GATEWAY_URL", ""), "key": app.key}


@router.post("/applications", status_code=201)
async def create_application(body: NewApplication, user: str = Depends(current_user)) -> dict:
    """A new application: the endpoint URL and its key, shown this once."""
    return _with_key(await _call(store.create_application, _dsn(), user, body.name, body.models, _served_models(),
                                 body.expires_in_days, body.plan))


@router.get("/applications")
async def my_applications(user: str = Depends(current_user)) -> list[dict]:
    return [_public(app) for app in await _call(store.list_applications, _dsn(), user)]


@router.post("/applications/{name:path}/rotate")
async def rotate(name: str, user: str = Depends(current_user)) -> dict:
    """A new key for the application (shown once); the old one works for a short grace period."""
    return _with_key(await _call(store.rotate_application, _dsn(), user, name, changes=True))


@router.delete("/applications/{name:path}")
async def revoke(name: str, user: str = Depends(current_user)) -> dict:
    await _call(store.revoke_application, _dsn(), user, name, changes=True)
    return {"revoked": name}


@router.get("/usage")
async def my_usage(user: str = Depends(current_user)) -> list[dict]:
    return await _call(store.usage_summary, _dsn(), user)


@router.get("/refusals")
async def my_refusals(user: str = Depends(current_user)) -> list[dict]:
    return await _call(store.refusals, _dsn(), user)


@router.get("/me")
async def me(user: str = Depends(current_user)) -> dict:
    """My plan and what I have left this month (budget and tokens)."""
    return {"user": user, **await _call(store.remaining, _dsn(), user)}


@router.get("/plans")
async def all_plans(user: str = Depends(current_user)) -> list[dict]:
    return await _call(store.plans, _dsn())


class PlanRequest(BaseModel):
    plan: str = Field(min_length=1, max_length=80)
    reason: str = Field(default="", max_length=500)


@router.post("/plan-requests", status_code=201)
async def request_plan(body: PlanRequest, user: str = Depends(current_user)) -> dict:
    """Ask the platform team for another plan."""
    return await _call(store.request_plan, _dsn(), user, body.plan, body.reason)


# --- admin ----------------------------------------------------------------------------

class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    team: str = "unassigned"
    plan: str = "standard"


@router.post("/admin/users", status_code=201)
async def register_user(body: NewUser, scope: str | None = Depends(admin)) -> dict:
    """Register a user (into the admin key's scope) and hand out their portal token (shown once)."""
    if scope is None:
        await _call(store.ensure_user, _dsn(), body.name, body.team, body.plan)
        await _call(scopes.to_platform_team, _dsn(), body.name)
    else:
        await _call(scopes.register_user, _dsn(), scope, body.name, body.team, body.plan)
    return {"user": body.name, "portal_token": await _call(store.issue_portal_token, _dsn(), body.name)}


@router.get("/admin/top")
async def top(limit: int = 10, scope: str | None = Depends(admin)) -> list[dict]:
    return await _call(store.top_consumers, _dsn(), limit, None, scope)


@router.get("/admin/plan-requests")
async def pending_plan_requests(scope: str | None = Depends(admin)) -> list[dict]:
    return await _call(store.plan_requests, _dsn(), True, scope)


async def _in_scope(scope: str | None, user: str) -> None:
    """A scoped admin key reaches the users of its scope only (403 otherwise)."""
    if scope is not None:
        await _call(scopes.check_user, _dsn(), scope, user)


class Grant(BaseModel):
    plan: str = Field(min_length=1, max_length=80)


@router.put("/admin/users/{name}/plan")
async def grant(name: str, body: Grant, scope: str | None = Depends(admin)) -> dict:
    await _in_scope(scope, name)
    if scope is not None:
        await _call(scopes.check_plan, _dsn(), scope, body.plan)
    await _call(store.grant_plan, _dsn(), name, body.plan, changes=True)
    return {"user": name, "plan": body.plan}


class Cap(BaseModel):
    monthly_tokens: int | None = Field(default=None, ge=0)


@router.put("/admin/users/{name}/cap")
async def cap(name: str, body: Cap, scope: str | None = Depends(admin)) -> dict:
    await _in_scope(scope, name)
    await _call(store.cap_user, _dsn(), name, body.monthly_tokens, changes=True)
    return {"user": name, "monthly_token_cap": body.monthly_tokens}


class Block(BaseModel):
    blocked: bool = True


@router.put("/admin/users/{name}/block")
async def block(name: str, body: Block, scope: str | None = Depends(admin)) -> dict:
    await _in_scope(scope, name)
    await _call(store.block_user, _dsn(), name, body.blocked, changes=True)
    return {"user": name, "blocked": body.blocked}


class Plan(BaseModel):
    rpm: int = Field(gt=0)
    tpm: int = Field(gt=0)
    monthly_budget_usd: float = Field(ge=0)


@router.put("/admin/plans/{name}")
async def plan(name: str, body: Plan, scope: str | None = Depends(admin)) -> dict:
    """Create or change a plan (a scoped admin key: create its own, change only those)."""
    if scope is None:
        await _call(store.set_plan, _dsn(), name, body.rpm, body.tpm, body.monthly_budget_usd, changes=True)
    else:
        await _call(scopes.set_plan, _dsn(), scope, name, body.rpm, body.tpm, body.monthly_budget_usd, changes=True)
    return {"plan": name, **body.model_dump()}


# --- admin: the instructor's room (python -m helpers instructor) ------------------------

@router.get("/admin/users")
async def all_users(scope: str | None = Depends(admin)) -> list[dict]:
    return await _call(store.users, _dsn(), scope)


@router.get("/admin/users/{name}/applications", dependencies=[Depends(full_admin)])
async def active_applications(name: str) -> list[str]:
    """The names of a user's applications whose keys still work."""
    return await _call(store.active_applications, _dsn(), name)


@router.post("/admin/users/{name}/revoke-all", dependencies=[Depends(full_admin)])
async def revoke_all(name: str) -> dict:
    return {"user": name, "revoked": await _call(store.revoke_all_applications, _dsn(), name, changes=True)}


class Probe(BaseModel):
    models: list[str] = Field(min_length=1)


@router.post("/admin/users/{name}/probe-key", status_code=201, dependencies=[Depends(full_admin)])
async def probe_key(name: str, body: Probe) -> dict:
    """A probe key for a user (never billed, no budget or cap); shown once, revoked by DELETE."""
    key = await _call(store.issue_probe_key, _dsn(), name, body.models, changes=True)
    return {"user": name, "key": key, "endpoint": os.environ.get("MAAS_GATEWAY_URL", "")}


@router.delete("/admin/users/{name}/probe-key", dependencies=[Depends(full_admin)])
async def revoke_probe(name: str) -> dict:
    return {"user": name, "revoked": await _call(store.revoke_probe_key, _dsn(), name, changes=True)}


@router.post("/admin/users/{name}/forget-usage", dependencies=[Depends(full_admin)])
async def forget_usage(name: str) -> dict:
    """Delete a user's ledger rows, rollups and refusal counts (their usage history)."""
    return {"user": name, "deleted": await _call(store.forget_usage, _dsn(), name, changes=True)}


@router.get("/admin/usage")
async def everyone_usage(scope: str | None = Depends(admin)) -> list[dict]:
    return await _call(store.usage_summary, _dsn(), None, None, scope)


@router.get("/admin/ledger.csv", dependencies=[Depends(full_admin)])
async def ledger_csv():
    from fastapi.responses import PlainTextResponse

    return PlainTextResponse(await _call(store.export_ledger_csv, _dsn()), media_type="text/csv")


@router.post("/admin/scopes/{name}", status_code=201, dependencies=[Depends(full_admin)])
async def scope_key(name: str) -> dict:
    """A new admin key for a scope (an attendee's; the previous one stops working): shown once."""
    return {"scope": name, "key": await _call(scopes.issue_key, _dsn(), name)}


@router.delete("/admin/scopes/{name}", dependencies=[Depends(full_admin)])
async def revoke_scope(name: str) -> dict:
    return {"scope": name, "revoked": await _call(scopes.revoke, _dsn(), name)}


def mount(on_change: Callable[[], None] | None = None) -> None:
    """Add the portal's routes to the running LiteLLM app (once)."""
    global _on_change
    from litellm.proxy.proxy_server import app

    if on_change is not None:
        _on_change = on_change
    if not any(getattr(route, "path", "").startswith("/portal") for route in app.routes):
        app.include_router(router)
    web.install(app)  # the same portal as web pages, under /portal/ui
