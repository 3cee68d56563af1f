"""The self-service portal as web pages, served by the gateway under /portal/ui.

Models (the catalog of served models with prices), my applications (create on my plan, key shown once with
curl and Python snippets, rotate, revoke, ask for another plan), my usage (24 h and 30 days as inline SVG,
per application and model, what is left this month, CSV) and the admin view (top consumers, users with
cap / block / plan, plan requests, plans, the company's charts). Server-rendered with Jinja2 (autoescape
on, strict undefined); no script or style from anywhere but the page itself (a CSP with a nonce says so).

Who is signed in and CSRF: ``webauth``. Every change is a POST with the page's CSRF token; every store
call uses the signed-in user's own name, never one sent by the browser, so a user sees and changes only
their own applications.
"""
from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timezone
from urllib.parse import quote

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from . import pages, portal_data, store, webauth

router = APIRouter(prefix="/portal/ui", include_in_schema=False)
sessions = webauth.Sessions()
_admins = webauth.GroupMembers(os.environ.get(webauth.ADMIN_GROUP_ENV) or webauth.DEFAULT_ADMIN_GROUP)
DEFAULT_PLAN_ENV = "MAAS_PORTAL_DEFAULT_PLAN"  # the plan of a user the oauth-proxy signs in for the first time
USER_LIMIT = 100
DATABASE_DOWN = ("The portal cannot reach the gateway's database right now. Retry in a minute; if it lasts, the "
                 "platform team runs: python -m helpers up")
NOTICES = {"revoked": "Application revoked: its key stopped working.", "requested": "Plan requested: the platform "
           "team will answer it.", "capped": "Cap saved.", "blocked": "Access changed.", "granted": "Plan set.",
           "declined": "Request declined.", "plan": "Plan saved.", "signed-out": "Signed out."}


class Refused(Exception):
    """A request the portal answers with an error page (status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _dsn() -> str:
    return os.environ[store.DSN_ENV]


def _served() -> list[str]:
    return [m for m in os.environ.get("MAAS_GATEWAY_MODELS", "").split(",") if m]


def _behind_proxy() -> bool:
    return webauth.mode() == webauth.PROXY


def _https(request: Request) -> bool:
    return webauth.is_https(request.url.scheme, request.headers, _behind_proxy())


def _endpoint(request: Request) -> str:
    """The OpenAI base URL as this browser reached the gateway (the Route on a cluster)."""
    public = os.environ.get("MAAS_GATEWAY_PUBLIC_URL")
    if public:
        return public.rstrip("/")
    scheme = "https" if _https(request) else "http"
    return f"{scheme}://{request.headers.get('host', request.url.netloc)}/v1"


async def _identity(request: Request) -> webauth.Identity | None:
    if _behind_proxy():
        identity = webauth.proxied_identity(request.headers, _admins)
        if identity is not None:  # first visit: registered on the default plan (admins too: they have apps as well)
            plan = os.environ.get(DEFAULT_PLAN_ENV) or "standard"
            await _store(store.ensure_user, _dsn(), identity.user, "unassigned", plan)
        return identity
    return sessions.get(request.cookies.get(webauth.COOKIE))


async def _store(function, *args):
    try:
        return await run_in_threadpool(function, *args)
    except store.StoreError as error:
        raise Refused(400, str(error)) from None
    except psycopg.OperationalError:
        raise Refused(503, DATABASE_DOWN) from None


def _page(request: Request, template: str, me: webauth.Identity | None, status: int = 200, **context) -> HTMLResponse:
    """A page with its CSRF token (and the headers of ``pages.security_headers``)."""
    csrf = webauth.csrf_token(me.binding) if me else context.pop("csrf", "")
    notice = NOTICES.get(request.query_params.get("done", ""))
    html, headers = pages.render(template, me=me, csrf=csrf, signout=not _behind_proxy(),
                                 notice=context.pop("notice", notice), error=context.pop("error", None), **context)
    return HTMLResponse(html, status, headers=headers)


async def _signed_in(request: Request, admin: bool = False) -> webauth.Identity:
    me = await _identity(request)
    if me is None:
        raise Refused(401, "Sign in first." if not _behind_proxy() else "The OpenShift sign-in did not reach the "
                      "portal; open it through its Route.")
    if admin and not me.admin:
        raise Refused(403, "This page is for the platform team (the gateway's admin key, or the OpenShift group "
                      f"{_admins.group!r} on a cluster).")
    if not admin and me.user is None:
        raise Refused(403, "The admin key has no applications or usage of its own: use the Admin page, or sign in "
                      "with a developer's portal token.")
    return me


async def _form(request: Request, me: webauth.Identity) -> dict[str, str]:
    """The posted form, after its CSRF token is checked against the session."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    if not webauth.csrf_ok(me.binding, form.get("csrf")):
        raise Refused(403, "This form has expired or did not come from the portal (CSRF check). Reload the page "
                      "and try again.")
    return form


def _done(path: str, code: str) -> RedirectResponse:
    return RedirectResponse(f"/portal/ui/{path}?done={code}", status_code=303)


def _login_page(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
    """The sign-in form, bound to this browser by a cookie its CSRF token is derived from."""
    binding = secrets.token_urlsafe(24)
    page = _page(request, "login.html", None, status, title="Sign in", page="login", error=error,
                 csrf=webauth.csrf_token("login:" + binding))
    page.set_cookie(webauth.LOGIN_COOKIE, binding, **webauth.cookie_attributes(_https(request), max_age=3600))
    return page


async def refused_page(request: Request, error: Refused) -> Response:
    """How a refusal looks: the sign-in page when nobody is signed in (locally), else an error page."""
    if _behind_proxy():
        return _page(request, "base.html", None, error.status, title="Refused", page="", error=error.message)
    me = sessions.get(request.cookies.get(webauth.COOKIE))
    if me is None:
        return _login_page(request, 200 if error.status == 401 else error.status,
                           None if error.status == 401 else error.message)
    return _page(request, "base.html", me, error.status, title="Refused", page="", error=error.message)


# --- sign in and out ------------------------------------------------------------------------

@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse("/portal/ui/models", status_code=303)


@router.get("/login")
async def login_page(request: Request) -> Response:
    if _behind_proxy():
        return RedirectResponse("/portal/ui/models", status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    if _behind_proxy():
        raise Refused(404, "Sign-in is OpenShift's here.")
    form = {key: str(value) for key, value in (await request.form()).items()}
    binding = request.cookies.get(webauth.LOGIN_COOKIE, "")
    if not binding or not webauth.csrf_ok("login:" + binding, form.get("csrf")):
        raise Refused(403, "The sign-in form expired (CSRF check): reload the page and sign in again.")
    token = form.get("token", "").strip()
    admin_key = os.environ.get("LITELLM_MASTER_KEY", "")
    user, admin = None, False
    if admin_key and token.isascii() and secrets.compare_digest(token.encode(), admin_key.encode()):
        admin = True
    elif token.isascii() and token:
        user = await _store(store.user_for_portal_token, _dsn(), token)
    if user is None and not admin:
        raise Refused(403, "Unknown portal token: check it, or ask the platform team for a new one.")
    response = RedirectResponse("/portal/ui/admin" if admin else "/portal/ui/apps", status_code=303)
    response.set_cookie(webauth.COOKIE, sessions.create(user, admin), **webauth.cookie_attributes(_https(request)))
    response.delete_cookie(webauth.LOGIN_COOKIE, path=webauth.COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    me = await _signed_in_any(request)
    await _form(request, me)
    sessions.end(request.cookies.get(webauth.COOKIE))
    response = RedirectResponse("/portal/ui/login?done=signed-out", status_code=303)
    response.delete_cookie(webauth.COOKIE, path=webauth.COOKIE_PATH)
    return response


async def _signed_in_any(request: Request) -> webauth.Identity:
    me = await _identity(request)
    if me is None:
        raise Refused(401, "Sign in first.")
    return me


# --- the model catalog ----------------------------------------------------------------------

@router.get("/models")
async def models_page(request: Request) -> Response:
    me = await _signed_in_any(request)
    return _page(request, "models.html", me, title="Models", page="models", endpoint=_endpoint(request),
                 models=portal_data.served_models(_served()))


# --- my applications ------------------------------------------------------------------------

def _snippets(endpoint: str, model: str) -> tuple[str, str]:
    """Ready-to-run curl and Python that read the key from $MAAS_API_KEY (never the key itself)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Montreal is a"}], "max_tokens": 20})
    curl = (f"curl -s {endpoint}/chat/completions \\\n  -H \"Authorization: Bearer $MAAS_API_KEY\" \\\n"
            f"  -H \"Content-Type: application/json\" \\\n  -d '{body}'")
    python = ("import os\nfrom openai import OpenAI\n\n"
              f"client = OpenAI(base_url={endpoint!r}, api_key=os.environ[\"MAAS_API_KEY\"])\n"
              f"reply = client.chat.completions.create(model={model!r}, max_tokens=20,\n"
              "    messages=[{\"role\": \"user\", \"content\": \"Montreal is a\"}])\n"
              "print(reply.choices[0].message.content)")
    return curl, python


async def _apps_page(request: Request, me: webauth.Identity, created: store.Application | None = None,
                     status: int = 200, error: str | None = None) -> HTMLResponse:
    dsn = _dsn()
    curl, python = _snippets(_endpoint(request), created.models[0]) if created else ("", "")
    return _page(request, "apps.html", me, status, title="My applications", page="apps", created=created,
                 applications=await _store(store.list_applications, dsn, me.user),
                 left=await _store(store.remaining, dsn, me.user), plans=await _store(store.plans, dsn),
                 models=_served(), selected_model=request.query_params.get("model", ""), endpoint=_endpoint(request),
                 curl=curl, python=python, now=datetime.now(timezone.utc), error=error)


@router.get("/apps")
async def apps_page(request: Request) -> Response:
    return await _apps_page(request, await _signed_in(request))


@router.post("/apps/create")
async def create_app(request: Request) -> Response:
    me = await _signed_in(request)
    form = await _form(request, me)
    days = form.get("expires_in_days", "").strip()
    try:
        expires = float(days) if days else None
        created = await run_in_threadpool(store.create_application, _dsn(), me.user, form.get("name", "").strip(),
                                          [form.get("model", "")], _served(), expires)
    except (store.StoreError, ValueError) as error:
        return await _apps_page(request, me, status=400, error=str(error))
    return await _apps_page(request, me, created=created)


@router.post("/apps/rotate")
async def rotate_app(request: Request) -> Response:
    me = await _signed_in(request)
    form = await _form(request, me)
    try:
        rotated = await run_in_threadpool(store.rotate_application, _dsn(), me.user, form.get("name", ""))
    except store.StoreError as error:
        return await _apps_page(request, me, status=400, error=str(error))
    _changed()
    return await _apps_page(request, me, created=rotated)


@router.post("/apps/revoke")
async def revoke_app(request: Request) -> Response:
    me = await _signed_in(request)
    form = await _form(request, me)
    try:
        await run_in_threadpool(store.revoke_application, _dsn(), me.user, form.get("name", ""))
    except store.StoreError as error:
        return await _apps_page(request, me, status=400, error=str(error))
    _changed()
    return _done("apps", "revoked")


@router.post("/plan-request")
async def plan_request(request: Request) -> Response:
    me = await _signed_in(request)
    form = await _form(request, me)
    await _store(store.request_plan, _dsn(), me.user, form.get("plan", ""), form.get("reason", "")[:500])
    return _done("apps", "requested")


def _changed() -> None:
    """Keys, plans or users changed: the gateway forgets its cached keys (the portal API's hook)."""
    from . import portal

    portal._on_change()


# --- usage ------------------------------------------------------------------------------------

@router.get("/usage")
async def usage_page(request: Request) -> Response:
    me = await _signed_in(request)
    dsn = _dsn()
    application = request.query_params.get("application") or None
    model = request.query_params.get("model") or None
    view = await run_in_threadpool(pages.usage_view, dsn, me.user, application, model)
    apps = sorted({r["application"] for r in view["breakdown"]} | {a.name for a in await _store(
        store.list_applications, dsn, me.user)})
    filters = {"applications": apps, "models": sorted(set(_served()) | {r["model"] for r in view["breakdown"]}),
               "application": application, "model": model}
    scope = " · ".join(x for x in (application and f"application {application}", model and f"model {model}") if x)
    return _page(request, "usage.html", me, title="My usage", page="usage", heading="My usage", scope=scope,
                 left=await _store(store.remaining, dsn, me.user), filters=filters, csv_url="/portal/ui/usage.csv",
                 **{k: view[k] for k in ("charts", "totals", "breakdown")})


def _csv(text: str, name: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"{name}\"", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@router.get("/usage.csv")
async def usage_csv(request: Request) -> Response:
    me = await _signed_in(request)
    return _csv(await run_in_threadpool(portal_data.usage_csv, _dsn(), me.user), f"usage-{quote(me.user)}.csv")


# --- admin --------------------------------------------------------------------------------------

@router.get("/admin")
async def admin_page(request: Request) -> Response:
    me = await _signed_in(request, admin=True)
    dsn = _dsn()
    search = request.query_params.get("q", "")[:80]
    view = await run_in_threadpool(pages.usage_view, dsn, None)
    return _page(request, "admin.html", me, title="Admin", page="admin", heading="The whole company",
                 scope="every user", left=None, filters=None, csv_url="/portal/ui/admin/usage.csv",
                 top=await _store(portal_data.top_consumers, dsn, 10),
                 users=await _store(portal_data.users, dsn, search, USER_LIMIT), user_limit=USER_LIMIT, q=search,
                 plans=await _store(store.plans, dsn), requests=await _store(store.plan_requests, dsn),
                 **{k: view[k] for k in ("charts", "totals", "breakdown")})


@router.get("/admin/usage.csv")
async def company_csv(request: Request) -> Response:
    await _signed_in(request, admin=True)
    return _csv(await run_in_threadpool(portal_data.usage_csv, _dsn(), None), "usage-company.csv")


def _number(text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        raise Refused(400, f"{what} must be a number, got {text!r}") from None


@router.post("/admin/{action}")
async def admin_action(request: Request, action: str) -> Response:
    me = await _signed_in(request, admin=True)
    form = await _form(request, me)
    dsn, user = _dsn(), form.get("user", "")
    if action == "cap":
        tokens = form.get("monthly_tokens", "").strip()
        await _store(store.cap_user, dsn, user, _number(tokens, int, "the cap") if tokens else None)
        code = "capped"
    elif action == "block":
        await _store(store.block_user, dsn, user, form.get("blocked") == "true")
        code = "blocked"
    elif action == "grant":
        await _store(store.grant_plan, dsn, user, form.get("plan", ""))
        code = "granted"
    elif action == "decline":
        await _store(portal_data.decline_plan_request, dsn, _number(form.get("request_id", ""), int, "request id"))
        code = "declined"
    elif action == "plan":
        await _store(store.set_plan, dsn, form.get("name", "").strip(), _number(form.get("rpm", ""), int, "rpm"),
                     _number(form.get("tpm", ""), int, "tpm"),
                     _number(form.get("monthly_budget_usd", ""), float, "the budget"))
        code = "plan"
    else:
        raise Refused(404, f"no admin action {action!r}")
    _changed()
    return _done("admin", code)


def install(app) -> None:
    """Serve the pages on the gateway's app (once), with refusals rendered as pages."""
    if not any(getattr(route, "path", "").startswith("/portal/ui") for route in app.routes):
        app.include_router(router)
        app.add_exception_handler(Refused, refused_page)
        if app.middleware_stack is not None:  # the server started before the config loaded the plugin
            app.middleware_stack = app.build_middleware_stack()
