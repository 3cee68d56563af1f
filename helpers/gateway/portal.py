"""The small self-service and admin HTTP API, served by the gateway under /portal.

Self-service (``Authorization: Bearer <portal token>``): create an application
with a key for models and a plan, list my applications, revoke one, see my usage.
Admin (``Authorization: Bearer <gateway admin key>``): register users, top
consumers, cap or block a user, create or change a plan.
"""
from __future__ import annotations

import os
import secrets
from datetime import datetime

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from helpers.gateway import store

router = APIRouter(prefix="/portal", tags=["portal"])


def _dsn() -> str:
    return os.environ[store.DSN_ENV]


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "send your portal token as 'Authorization: Bearer pt-...'")
    return authorization.removeprefix("Bearer ").strip()


async def current_user(authorization: str | None = Header(default=None)) -> str:
    user = await run_in_threadpool(store.user_for_portal_token, _dsn(), _bearer(authorization))
    if user is None:
        raise HTTPException(401, "unknown portal token; ask the platform team for a new one")
    return user


async def admin(authorization: str | None = Header(default=None)) -> None:
    if not secrets.compare_digest(_bearer(authorization), os.environ.get("LITELLM_MASTER_KEY", "")):
        raise HTTPException(403, "admin endpoints need the gateway's admin key")


class NewApplication(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    models: list[str] = Field(min_length=1)
    plan: str = "standard"


def _served_models() -> list[str]:
    return [m for m in os.environ.get("MAAS_GATEWAY_MODELS", "").split(",") if m]


def _public(app: store.Application) -> dict:
    return {"name": app.name, "models": app.models, "plan": app.plan, "key_hint": app.key_hint,
            "created_at": app.created_at.isoformat(),
            "revoked_at": app.revoked_at.isoformat() if app.revoked_at else None}


async def _call(function, *args):
    try:
        return await run_in_threadpool(function, *args)
    except store.StoreError as error:
        raise HTTPException(400, str(error)) from None


@router.post("/applications", status_code=201)
async def create_application(body: NewApplication, user: str = Depends(current_user)) -> dict:
    """A new application: the endpoint URL and its key, shown this once."""
    app = await _call(store.create_application, _dsn(), user, body.name, body.models, body.plan, _served_models())
    return {**_public(app), "endpoint": os.environ.get("MAAS_GATEWAY_URL", ""), "key": app.key}


@router.get("/applications")
async def my_applications(user: str = Depends(current_user)) -> list[dict]:
    return [_public(app) for app in await _call(store.list_applications, _dsn(), user)]


@router.delete("/applications/{name}")
async def revoke(name: str, user: str = Depends(current_user)) -> dict:
    await _call(store.revoke_application, _dsn(), user, name)
    return {"revoked": name}


@router.get("/usage")
async def my_usage(user: str = Depends(current_user)) -> list[dict]:
    return await _call(store.usage_summary, _dsn(), user)


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    team: str = "unassigned"


@router.post("/admin/users", status_code=201, dependencies=[Depends(admin)])
async def register_user(body: NewUser) -> dict:
    """Register a user and hand out their portal token (shown once)."""
    await _call(store.ensure_user, _dsn(), body.name, body.team)
    return {"user": body.name, "portal_token": await _call(store.issue_portal_token, _dsn(), body.name)}


@router.get("/admin/top", dependencies=[Depends(admin)])
async def top(limit: int = 10) -> list[dict]:
    return await _call(store.top_consumers, _dsn(), limit)


class Cap(BaseModel):
    monthly_tokens: int | None = Field(default=None, ge=0)


@router.put("/admin/users/{name}/cap", dependencies=[Depends(admin)])
async def cap(name: str, body: Cap) -> dict:
    await _call(store.cap_user, _dsn(), name, body.monthly_tokens)
    return {"user": name, "monthly_token_cap": body.monthly_tokens}


class Block(BaseModel):
    blocked: bool = True


@router.put("/admin/users/{name}/block", dependencies=[Depends(admin)])
async def block(name: str, body: Block) -> dict:
    await _call(store.block_user, _dsn(), name, body.blocked)
    return {"user": name, "blocked": body.blocked}


class Plan(BaseModel):
    rpm: int = Field(gt=0)
    tpm: int = Field(gt=0)
    monthly_budget_usd: float = Field(ge=0)


@router.put("/admin/plans/{name}", dependencies=[Depends(admin)])
async def plan(name: str, body: Plan) -> dict:
    await _call(store.set_plan, _dsn(), name, body.rpm, body.tpm, body.monthly_budget_usd)
    return {"plan": name, **body.model_dump()}


def mount() -> None:
    """Add the portal's routes to the running LiteLLM app (once)."""
    from litellm.proxy.proxy_server import app

    if not any(getattr(route, "path", "").startswith("/portal") for route in app.routes):
        app.include_router(router)
