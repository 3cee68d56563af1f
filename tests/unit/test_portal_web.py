"""The portal's pages without servers: escaping, CSRF, cookies, which headers are trusted, the charts."""
from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from helpers.gateway import charts, pages, portal_data, store, webauth

ROOT = Path(__file__).parents[2]
HOSTILE = '<script>alert(1)</script>"\'&'


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_setting_decides_whether_proxy_headers_count():
    assert webauth.mode({}) == webauth.LOGIN
    assert webauth.mode({webauth.AUTH_ENV: "openshift-oauth-proxy"}) == webauth.PROXY
    with pytest.raises(webauth.AuthConfigError, match="use one of"):
        webauth.mode({webauth.AUTH_ENV: "yes"})


def test_sessions_expire_end_and_stay_bounded():
    clock = Clock()
    sessions = webauth.Sessions(lifetime_s=60, limit=2, clock=clock)
    ana = sessions.create("ana", False)
    assert sessions.get(ana) == webauth.Identity("ana", False, sessions.get(ana).binding)
    assert sessions.get(ana).binding != ana  # what forms are bound to is not the cookie's value
    assert sessions.get("forged") is None and sessions.get(None) is None and sessions.get("x" * 500) is None
    clock.now = 61
    assert sessions.get(ana) is None  # expired
    first, second, third = (sessions.create(name, False) for name in ("a", "b", "c"))
    assert sessions.get(first) is None and sessions.get(third).user == "c"  # the oldest dropped past the limit
    sessions.end(third)
    assert sessions.get(third) is None
    sessions.end_user("b")
    assert sessions.get(second) is None


def test_a_csrf_token_belongs_to_one_session():
    token = webauth.csrf_token("session-1")
    assert webauth.csrf_ok("session-1", token)
    assert not webauth.csrf_ok("session-2", token)
    assert not webauth.csrf_ok("session-1", "") and not webauth.csrf_ok("session-1", None)
    tampered = token[:-1] + ("1" if token.endswith("0") else "0")  # one character changed, always
    assert tampered != token and not webauth.csrf_ok("session-1", tampered)


def test_cookies_are_httponly_strict_and_secure_over_https():
    assert webauth.cookie_attributes(secure=False) == {"httponly": True, "samesite": "strict", "secure": False,
                                                       "path": "/portal/ui", "max_age": webauth.SESSION_S}
    assert webauth.cookie_attributes(secure=True)["secure"] is True
    assert not webauth.is_https("http", {"x-forwarded-proto": "https"}, trust_proxy=False)  # a client could send it
    assert webauth.is_https("http", {"x-forwarded-proto": "https"}, trust_proxy=True)
    assert webauth.is_https("https", {}, trust_proxy=False)


def test_the_proxied_user_and_the_admin_group():
    group = webauth.GroupMembers("maas-admins", fetch=lambda name: ["olivia"])
    assert webauth.proxied_identity({"x-forwarded-user": "olivia"}, group) == \
        webauth.Identity("olivia", True, "proxy:olivia")
    assert webauth.proxied_identity({"x-forwarded-user": "dev1"}, group).admin is False
    assert webauth.proxied_identity({}, group) is None
    assert webauth.proxied_identity({"x-forwarded-user": "a\nb"}, group) is None


def test_the_admin_group_keeps_its_last_answer_when_the_api_is_away():
    answers = iter([["olivia"], RuntimeError("API down")])

    def fetch(name: str) -> list[str]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    group = webauth.GroupMembers("maas-admins", ttl_s=0.0, fetch=fetch)
    assert group() == {"olivia"}
    assert group() == {"olivia"}


def test_charts_are_svg_with_every_text_escaped():
    svg = charts.bar_chart(["09:00", HOSTILE], [5, 1500], HOSTILE, "tokens")
    assert svg.startswith("<svg") and svg.count("<rect") == 2
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert ">2k<" in svg  # the axis' top: 1,500 rounded up to 2,000
    with pytest.raises(ValueError):
        charts.bar_chart(["a"], [1, 2], "t", "u")


def _application(name: str) -> store.Application:
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    return store.Application(1, HOSTILE, name, ["parasol-tiny"], "standard", "sk-maas-abcd", now, None, None,
                             "sk-maas-secret")


def _render_apps(name: str) -> tuple[str, dict]:
    me = webauth.Identity(HOSTILE, False, "b")
    left = {"plan": "standard", "monthly_budget_usd": 5.0, "budget_left_usd": 5.0}
    return pages.render("apps.html", me=me, csrf="TOKEN", signout=True, notice=None, error=f"bad name {name!r}",
                        title="My applications", page="apps", created=_application(name),
                        applications=[_application(name)], left=left, plans=[{"name": "standard", "rpm": 1, "tpm": 1,
                                                                                "monthly_budget_usd": 5.0}],
                        models=["parasol-tiny"], selected_model=HOSTILE, endpoint="http://gw/v1", curl=HOSTILE,
                        python=HOSTILE, now=datetime.now(timezone.utc))


def test_pages_escape_every_name_and_bind_every_form():
    html, headers = _render_apps(HOSTILE)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    nonce = re.search(r"'nonce-([^']+)'", headers["Content-Security-Policy"]).group(1)
    assert re.findall(r"<(?:script|style)[^>]*>", html) == [f'<style nonce="{nonce}">', f'<script nonce="{nonce}">']
    assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-store"
    forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", html, re.S)
    assert len(forms) >= 4 and all('name="csrf" value="TOKEN"' in form for form in forms)
    assert "http" not in re.sub(r"http://gw/v1|http://www.w3.org/2000/svg", "", html)  # nothing fetched from anywhere


def test_the_csv_export_never_starts_a_cell_with_a_formula():
    assert portal_data._csv_text("=HYPERLINK(1)") == "'=HYPERLINK(1)" and portal_data._csv_text("bot") == "bot"


def test_the_catalog_of_served_models_has_prices_and_context_from_the_data():
    tiny, unknown = portal_data.served_models(["parasol-tiny", "zz-unlisted"])
    assert (tiny.context_length, tiny.quantization, tiny.prompt_usd_per_million) == (2048, "bf16", 0.316)
    assert "not in the catalog" in unknown.description and unknown.context_length is None


HTTP_CHECKS = r"""
import json, os, re
os.environ.update({"LITELLM_MASTER_KEY": "sk-admin-unit", "MAAS_GATEWAY_MODELS": "parasol-tiny",
                   "MAAS_GATEWAY_DSN": "postgresql://nobody@127.0.0.1:1/none"})
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers.gateway import web, webauth
app = FastAPI(); web.install(app)
out = {}
def csrf(html): return re.search(r'name="csrf" value="([^"]+)"', html).group(1)
for base in ("http://testserver", "https://testserver"):
    c = TestClient(app, base_url=base, follow_redirects=False)
    login = c.get("/portal/ui/login")
    signed = c.post("/portal/ui/login", data={"csrf": csrf(login.text), "token": "sk-admin-unit"})
    out[base] = {"login_cookie": login.headers["set-cookie"], "session_cookie": signed.headers["set-cookie"],
                 "location": signed.headers["location"]}
c = TestClient(app, follow_redirects=False)
out["spoofed_header_locally"] = 'id="login-form"' in c.get("/portal/ui/models", headers={"X-Forwarded-User": "olivia"}).text
out["login_without_csrf"] = c.post("/portal/ui/login", data={"token": "sk-admin-unit"}).status_code
login = c.get("/portal/ui/login")
db_down = c.post("/portal/ui/login", data={"csrf": csrf(login.text), "token": "pt-wrong"})
out["database_down"] = [db_down.status_code, "cannot reach the gateway" in db_down.text]
login = c.get("/portal/ui/login")
c.post("/portal/ui/login", data={"csrf": csrf(login.text), "token": "sk-admin-unit"})
page = c.get("/portal/ui/models")
out["models_as_admin"] = page.status_code
out["admin_post_without_csrf"] = c.post("/portal/ui/admin/cap", data={"user": "x", "monthly_tokens": "1"}).status_code
out["admin_post_foreign_csrf"] = c.post("/portal/ui/admin/cap", data={"csrf": webauth.csrf_token("other"),
                                                                     "user": "x"}).status_code
out["admin_has_no_apps"] = c.get("/portal/ui/apps").status_code
os.environ["MAAS_PORTAL_AUTH"] = "openshift-oauth-proxy"
web._admins._fetch = lambda group: ["olivia"]
p = TestClient(app, follow_redirects=False)
out["proxy_without_user"] = p.get("/portal/ui/models").status_code
out["proxy_registers"] = p.get("/portal/ui/models", headers={"X-Forwarded-User": "olivia"}).status_code  # no DB
registered = []
web.store.ensure_user = lambda dsn, user, team, plan: registered.append(user)
out["proxy_member"] = p.get("/portal/ui/models", headers={"X-Forwarded-User": "olivia"}).text.count("(admin)")
out["proxy_non_member_admin_page"] = p.get("/portal/ui/admin", headers={"X-Forwarded-User": "dev1"}).status_code
out["registered"] = registered
out["proxy_login_form"] = p.get("/portal/ui/login").status_code
print(json.dumps(out))
"""


def test_cookies_csrf_and_header_trust_at_the_http_level():
    """The router in a bare FastAPI app of the gateway's venv (no database reached: admin sign-in, refusals)."""
    from helpers.gateway import proxy

    run = subprocess.run([str(proxy.gateway_python()), "-c", HTTP_CHECKS], capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    plain, tls = out["http://testserver"], out["https://testserver"]
    for cookie in (plain["session_cookie"], plain["login_cookie"], tls["session_cookie"]):
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/portal/ui" in cookie
    assert "Secure" not in plain["session_cookie"] and "Secure" in tls["session_cookie"]
    assert "sk-admin-unit" not in plain["session_cookie"] and plain["location"] == "/portal/ui/admin"
    assert out["spoofed_header_locally"] is True and out["models_as_admin"] == 200  # the header means nothing here
    assert out["login_without_csrf"] == 403 and out["database_down"] == [503, True]
    assert out["admin_post_without_csrf"] == 403 and out["admin_post_foreign_csrf"] == 403
    assert out["admin_has_no_apps"] == 403
    assert out["proxy_without_user"] == 401 and out["proxy_registers"] == 503  # trusted: it goes on to register olivia
    assert out["proxy_member"] == 1 and out["proxy_non_member_admin_page"] == 403 and out["registered"] == ["olivia", "dev1"] and out["proxy_login_form"] == 303
