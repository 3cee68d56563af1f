"""Who is looking at the portal's pages, and whether a form really came from them.

Two ways in, chosen by one explicit setting (``MAAS_PORTAL_AUTH``):

* ``login`` (the default; local): the user types their portal token (``pt-...``, what the instructor
  toolkit hands out) or the platform team the gateway's admin key; the gateway answers with a session
  cookie holding a random session id (HttpOnly, SameSite=Strict, Secure over https). Sessions live in
  the gateway's memory, keyed by the id's SHA-256: the token itself is never in a cookie or a URL.
* ``openshift-oauth-proxy`` (the cluster): OpenShift's oauth-proxy sidecar signs the user in and sets
  ``X-Forwarded-User`` (and ``X-Forwarded-Email``) on the requests it passes on, replacing whatever a
  client sent (openshift/oauth-proxy, oauthproxy.go: setRequestHeader). It sends no groups: admins are
  the members of a named OpenShift group, read from the cluster's API. These headers are trusted ONLY
  in this mode, which the manifests set where the gateway is reachable through the proxy alone.

Every form carries a CSRF token: an HMAC of the session id (or of the proxied user) with a secret of
this gateway process, checked in constant time on every POST.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

AUTH_ENV = "MAAS_PORTAL_AUTH"
ADMIN_GROUP_ENV = "MAAS_PORTAL_ADMIN_GROUP"
LOGIN, PROXY = "login", "openshift-oauth-proxy"
MODES = (LOGIN, PROXY)
DEFAULT_ADMIN_GROUP = "maas-admins"
COOKIE = "maas_portal_session"
LOGIN_COOKIE = "maas_portal_login"  # binds the sign-in form to this browser (login CSRF)
COOKIE_PATH = "/portal/ui"
SESSION_S = 8 * 3600
MAX_SESSIONS = 20_000
USER_HEADER = "x-forwarded-user"
_SECRET = secrets.token_bytes(32)  # CSRF tokens of this process; a restart asks for a new sign-in


class AuthConfigError(ValueError):
    """The portal's sign-in setting is not one it knows."""


@dataclass(frozen=True)
class Identity:
    """A signed-in person: a developer (``user``) or the platform team (``admin``), and what forms are bound to."""

    user: str | None  # None: the local admin (the gateway's admin key), who has no applications
    admin: bool
    binding: str  # the session id or the proxied user: the CSRF token is derived from it

    @property
    def name(self) -> str:
        return self.user or "platform team"


def mode(environ: Mapping[str, str] = os.environ) -> str:
    """``login`` unless the deployment says the gateway sits behind OpenShift's oauth-proxy."""
    value = environ.get(AUTH_ENV, LOGIN) or LOGIN
    if value not in MODES:
        raise AuthConfigError(f"{AUTH_ENV}={value!r}: use one of {list(MODES)}")
    return value


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Sessions:
    """Server-side sessions: a random id in the cookie, who it is in memory (oldest dropped past a bound)."""

    def __init__(self, lifetime_s: float = SESSION_S, limit: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lifetime, self._limit, self._clock = lifetime_s, limit, clock
        self._entries: OrderedDict[str, tuple[float, str | None, bool]] = OrderedDict()

    def create(self, user: str | None, admin: bool) -> str:
        """A new session; returns its id (for the cookie only)."""
        session_id = secrets.token_urlsafe(32)
        self._entries[_digest(session_id)] = (self._clock() + self._lifetime, user, admin)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)
        return session_id

    def get(self, session_id: str | None) -> Identity | None:
        if not session_id or len(session_id) > 100:
            return None
        key = _digest(session_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return Identity(entry[1], entry[2], key)

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._entries.pop(_digest(session_id), None)

    def end_user(self, user: str) -> None:
        """Sign a user out everywhere (a new portal token was issued)."""
        for key in [k for k, entry in self._entries.items() if entry[1] == user]:
            del self._entries[key]


def csrf_token(binding: str, secret: bytes = _SECRET) -> str:
    return hmac.new(secret, b"csrf:" + binding.encode(), hashlib.sha256).hexdigest()


def csrf_ok(binding: str, token: str | None, secret: bytes = _SECRET) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(binding, secret), str(token))


def cookie_attributes(secure: bool, max_age: int | None = SESSION_S) -> dict:
    """What every cookie of the portal is set with (Starlette's ``set_cookie`` keywords)."""
    attributes = {"httponly": True, "samesite": "strict", "secure": secure, "path": COOKIE_PATH}
    if max_age is not None:
        attributes["max_age"] = max_age
    return attributes


def is_https(scheme: str, headers: Mapping[str, str], trust_proxy: bool) -> bool:
    """Served over https: the request's own scheme, or (behind the trusted proxy only) X-Forwarded-Proto."""
    if scheme == "https":
        return True
    return trust_proxy and headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"


def proxied_identity(headers: Mapping[str, str], admins: Callable[[], frozenset[str]]) -> Identity | None:
    """The user the oauth-proxy signed in (call only in the proxy mode): admin when in the admin group."""
    user = (headers.get(USER_HEADER) or "").strip()
    if not user or not user.isprintable() or len(user) > 253:
        return None
    return Identity(user, user in admins(), "proxy:" + user)


class GroupMembers:
    """The members of one OpenShift group (user.openshift.io/v1), read with the pod's service account and
    kept for ``ttl_s``; an unreachable API keeps the last answer (or nobody is admin)."""

    API = "https://kubernetes.default.svc"
    ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

    def __init__(self, group: str, ttl_s: float = 30.0, fetch: Callable[[str], list[str]] | None = None) -> None:
        self.group, self._ttl = group, ttl_s
        self._fetch = fetch or self._from_api
        self._members: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    def __call__(self) -> frozenset[str]:
        if time.monotonic() - self._read_at > self._ttl:
            try:
                self._members = frozenset(self._fetch(self.group))
            except Exception:  # noqa: BLE001 - the cluster API is away: keep what we knew
                pass
            self._read_at = time.monotonic()
        return self._members

    def _from_api(self, group: str) -> list[str]:
        import json
        import ssl
        import urllib.parse
        import urllib.request

        token = open(f"{self.ACCOUNT}/token").read().strip()
        context = ssl.create_default_context(cafile=f"{self.ACCOUNT}/ca.crt")
        request = urllib.request.Request(
            f"{self.API}/apis/user.openshift.io/v1/groups/{urllib.parse.quote(group, safe='')}",
            headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5, context=context) as answer:
            return list(json.load(answer).get("users") or [])
