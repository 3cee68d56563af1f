"""Models-as-a-Service for the notebooks: start the gateway, use its portal.

``start_gateway`` puts the gateway (with its PostgreSQL) in front of every model
deployed on the platform; on a cluster platform it finds the shared gateway the
manifests deploy instead (never starting or stopping it). ``Portal`` is what a
developer uses (their portal token), ``Admin`` what the platform team uses (the
gateway's admin key); both talk to the gateway's small HTTP API, as a web portal would.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests

from .cluster.gateway import ClusterGateway
from .errors import PlatformError, WorkshopError
from .gateway import postgres, proxy
from .gateway.proxy import Gateway
from .platform import KubernetesPlatform, get_platform
from .platform.base import Deployment, Platform
from .platform.kubernetes import SHARED_STATUS
from .secretfiles import write_secret


class PortalError(WorkshopError):
    """The portal refused a request; the message is the portal's own explanation."""


def start_gateway(platform: Platform | None = None) -> Gateway | ClusterGateway:
    """The gateway in front of every ready deployment (restarted if the model list changed), priced by
    the price table (catalog/prices.yaml). On a cluster: the shared gateway of the manifests, once its
    Deployment is ready (MAAS_GATEWAY_TIMEOUT_S) and this notebook reaches it."""
    platform = platform or get_platform()
    if isinstance(platform, KubernetesPlatform):
        return platform.shared_gateway()
    return proxy.start_gateway([d for d in platform.list() if d.ready])


def gateway_url(platform: Platform | None = None) -> str | None:
    """The URL applications were given for the gateway (locally kept across restarts; on a cluster the shared
    gateway's), None before the local gateway's first start."""
    platform = platform or get_platform()
    if isinstance(platform, KubernetesPlatform):
        return platform.shared_gateway().url
    return proxy.known_url()


def stop_gateway(gateway: Gateway | ClusterGateway | None = None) -> list[str]:
    """Stop the local gateway and its PostgreSQL (keys and ledger stay on disk); returns what stopped.
    Only processes on this machine are ever stopped: the shared gateway in a cluster never is (given one,
    nothing is stopped)."""
    if isinstance(gateway, ClusterGateway):
        return []
    stopped = ["gateway"] if proxy.stop_gateway() else []
    return stopped + (["postgres"] if postgres.stop_postgres() else [])


LAB_SCHEMES = ["w4a16", "w8a8"]  # the quantized model behind the gateway: the first this CPU's vLLM serves


def lab_models(platform: Platform | None = None, count: int = 2) -> dict[str, Deployment]:
    """The models a lab puts behind the gateway, by name.

    On this machine the workshop's own, deployed here: the tiny model, then the quantized copy this CPU's vLLM
    serves (it prints which, and why). On a cluster the first ``count`` models the shared gateway routes (the
    GitOps list: granite on OpenShift AI), deployed by the platform team and reached through the gateway only."""
    platform = platform or get_platform()
    if isinstance(platform, KubernetesPlatform):
        shared = platform.shared_models()
        if len(shared) < count:
            raise PlatformError(
                f"this lab needs {count} models behind the shared gateway; it routes {len(shared)} "
                f"({', '.join(d.name for d in shared) or 'none'}). Ask the platform team to add one to "
                "manifests/models.yaml (kind: its `kind:` list) and apply the rendered manifests.")
        return {d.name: d for d in shared[:count]}
    from . import quantize
    from .models import ensure_tiny_model

    quantized, note = _quantized_lab_models()
    if count > 1:
        print(note)
    models = {"parasol-tiny": platform.deploy(ensure_tiny_model().path, "parasol-tiny")}
    for name, scheme in list(quantized.items())[:count - 1]:
        models[name] = quantize.deploy_quantized_tiny_model(platform, scheme, name)
    return models


def _quantized_lab_models() -> tuple[dict[str, str], str]:
    """The quantized copies this CPU's vLLM serves, {name: scheme} in LAB_SCHEMES' order, and the sentence why."""
    from . import quantize

    served_schemes, _, note = quantize.serving_plan(LAB_SCHEMES)
    return {f"parasol-tiny-{scheme}": scheme for scheme in served_schemes}, note


def second_lab_model(platform: Platform | None = None) -> str | None:
    """The quantized model ``lab_models`` puts behind the gateway second on this machine (Lab 2 leaves it
    running for Lab 5: a server start saved); None on a cluster, where the labs use the shared models."""
    platform = platform or get_platform()
    if isinstance(platform, KubernetesPlatform):
        return None
    return next(iter(_quantized_lab_models()[0]), None)


def release_lab_model(platform: Platform, deployment: Deployment) -> bool:
    """Undeploy a model this lab deployed here; a shared model of the cluster is the platform team's: left alone."""
    return False if deployment.status == SHARED_STATUS else platform.undeploy(deployment.name)


def ledger_dsn(platform: Platform | None = None) -> str:
    """Where Lab 6 reads the usage ledger: the local PostgreSQL; on a cluster a DSN on 127.0.0.1 with read-only
    sessions, through a port-forward to the gateway's PostgreSQL (its credentials from the gateway's Secret:
    keep the DSN out of outputs, as the notebooks do)."""
    platform = platform or get_platform()
    if isinstance(platform, KubernetesPlatform):
        return platform.ledger_dsn()
    return postgres.dsn()


def _portal_url(gateway: Gateway | ClusterGateway) -> str:
    return gateway.url.removesuffix("/v1") + "/portal"


def portal_page(gateway: Gateway) -> str:
    """The portal's web pages (sign in with your portal token; the platform team with the admin key)."""
    return _portal_url(gateway) + "/ui/login"


@dataclass
class _Client:
    base_url: str
    token: str
    user: str | None = None  # whose portal login this is (None for the admin)

    def __repr__(self) -> str:  # a token never lands in a notebook output
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _call(self, method: str, path: str, **kwargs):
        response = requests.request(method, self.base_url + path, headers={"Authorization": f"Bearer {self.token}"},
                                    timeout=30, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise PortalError(f"{method} {path} -> {response.status_code}: {detail}")
        return response.json()


def _quoted(name: str) -> str:
    return quote(name, safe="")


class Portal(_Client):
    """A developer's self-service: applications, keys, plan requests and usage."""

    def create_application(self, name: str, models: list[str], expires_in_days: float | None = None) -> dict:
        """A new application on my plan: its endpoint and key (shown this once: keep it secret)."""
        return self._call("POST", "/applications",
                          json={"name": name, "models": models, "expires_in_days": expires_in_days})

    def applications(self) -> list[dict]:
        return self._call("GET", "/applications")

    def rotate(self, name: str) -> dict:
        """A new key for the application (shown once); the old key keeps working for a few minutes."""
        return self._call("POST", f"/applications/{_quoted(name)}/rotate")

    def revoke(self, name: str) -> dict:
        return self._call("DELETE", f"/applications/{_quoted(name)}")

    def usage(self) -> list[dict]:
        return self._call("GET", "/usage")

    def save_token(self, path: str | Path | None = None) -> Path:
        """Write my portal token to a file only I can read (mode 600), to paste into the portal's sign-in page;
        returns its path (the token itself never lands in a notebook output)."""
        from .settings import get_settings

        target = Path(path) if path else get_settings().state_dir / "portal" / f"{self.user or 'me'}.token"
        return write_secret(target, self.token + "\n")

    def refusals(self) -> list[dict]:
        return self._call("GET", "/refusals")

    def me(self) -> dict:
        """My plan, and the budget and tokens I have left this month."""
        return self._call("GET", "/me")

    def plans(self) -> list[dict]:
        return self._call("GET", "/plans")

    def request_plan(self, plan: str, reason: str = "") -> dict:
        """Ask the platform team for another plan."""
        return self._call("POST", "/plan-requests", json={"plan": plan, "reason": reason})


class Admin(_Client):
    """The platform team's view: users, plans and plan requests, top consumers, caps."""

    def register_user(self, name: str, team: str = "unassigned", plan: str = "standard") -> Portal:
        """Register a user on a plan; returns their portal login."""
        token = self._call("POST", "/admin/users", json={"name": name, "team": team, "plan": plan})["portal_token"]
        return Portal(self.base_url, token, name)

    def grant_plan(self, user: str, plan: str) -> dict:
        """Put a user on a plan (their pending requests are answered)."""
        return self._call("PUT", f"/admin/users/{_quoted(user)}/plan", json={"plan": plan})

    def plan_requests(self) -> list[dict]:
        return self._call("GET", "/admin/plan-requests")

    def top_consumers(self, limit: int = 10) -> list[dict]:
        return self._call("GET", "/admin/top", params={"limit": limit})

    def cap_user(self, name: str, monthly_tokens: int | None) -> dict:
        return self._call("PUT", f"/admin/users/{_quoted(name)}/cap", json={"monthly_tokens": monthly_tokens})

    def block_user(self, name: str, blocked: bool = True) -> dict:
        return self._call("PUT", f"/admin/users/{_quoted(name)}/block", json={"blocked": blocked})

    def set_plan(self, name: str, rpm: int, tpm: int, monthly_budget_usd: float) -> dict:
        return self._call("PUT", f"/admin/plans/{_quoted(name)}",
                          json={"rpm": rpm, "tpm": tpm, "monthly_budget_usd": monthly_budget_usd})


class RoomAdmin(Admin):
    """The instructor's calls (python -m helpers instructor): users, every key of one attendee, probe keys
    (never billed, shown once), forgetting a user's usage, the ledger as CSV."""

    def users(self) -> list[dict]:
        return self._call("GET", "/admin/users")

    def active_applications(self, user: str) -> list[str]:
        return self._call("GET", f"/admin/users/{_quoted(user)}/applications")

    def revoke_all(self, user: str) -> list[str]:
        return self._call("POST", f"/admin/users/{_quoted(user)}/revoke-all")["revoked"]

    def probe_key(self, user: str, models: list[str]) -> str:
        return self._call("POST", f"/admin/users/{_quoted(user)}/probe-key", json={"models": models})["key"]

    def revoke_probe_key(self, user: str) -> bool:
        return self._call("DELETE", f"/admin/users/{_quoted(user)}/probe-key")["revoked"]

    def forget_usage(self, user: str) -> dict[str, int]:
        return self._call("POST", f"/admin/users/{_quoted(user)}/forget-usage")["deleted"]

    def usage(self) -> list[dict]:
        return self._call("GET", "/admin/usage")

    def scope_key(self, scope: str) -> str:
        """A new admin key of a scope (an attendee's on a shared cluster), shown once; the previous one stops."""
        return self._call("POST", f"/admin/scopes/{_quoted(scope)}")["key"]

    def revoke_scope(self, scope: str) -> bool:
        return self._call("DELETE", f"/admin/scopes/{_quoted(scope)}")["revoked"]

    def ledger_csv(self) -> str:
        response = requests.get(self.base_url + "/admin/ledger.csv", headers={"Authorization": f"Bearer {self.token}"},
                                timeout=300)
        if response.status_code >= 400:
            raise PortalError(f"GET /admin/ledger.csv -> {response.status_code}: {response.text[:300]}")
        return response.text


def admin(gateway: Gateway | ClusterGateway) -> RoomAdmin:
    """The platform team's console in a lab. Locally the gateway's admin key (from the state folder); on a shared
    cluster the attendee's scoped admin key (their users and plans only, from the Secret the instructor put in
    their namespace), never the gateway's own. Never printed."""
    key = gateway.admin_key() if isinstance(gateway, ClusterGateway) else proxy.admin_key()
    return RoomAdmin(_portal_url(gateway), key)  # a scoped key is refused the instructor's calls by the gateway


def room_admin(gateway: Gateway | ClusterGateway) -> RoomAdmin:
    """The instructor's console: the gateway's admin key (locally from the state folder, on a cluster from the
    gateway's Secret, which only the platform team may read). Never printed."""
    key = gateway.platform_admin_key() if isinstance(gateway, ClusterGateway) else proxy.admin_key()
    return RoomAdmin(_portal_url(gateway), key)


# -- what the gateway costs in latency (Lab 5) -----------------------------------------------------------
TOTAL_HEADER = "x-litellm-response-duration-ms"  # LiteLLM: from receiving the request to the answer
OVERHEAD_HEADER = "x-litellm-overhead-duration-ms"  # LiteLLM: that total minus the model call


def _question(i: int) -> list[dict]:
    return [{"role": "user", "content": f"What is {i % 90} + {i % 17}?"}]


def _p50_latency_ms(client, model: str, requests_count: int, max_tokens: int) -> float:
    import statistics
    import time

    latencies = []
    for i in range(requests_count):
        started = time.perf_counter()
        client.chat.completions.create(model=model, max_tokens=max_tokens, temperature=0.0, messages=_question(i))
        latencies.append(1000 * (time.perf_counter() - started))
    return statistics.median(latencies)


def _gateway_timed_ms(client, model: str, requests_count: int, max_tokens: int) -> tuple[list[float], list[float]]:
    """Per request through the gateway: the time this notebook waited, and the model call as the gateway's pod
    timed it (LiteLLM's x-litellm-response-duration-ms minus x-litellm-overhead-duration-ms)."""
    import time

    waited, model_call = [], []
    for i in range(requests_count):
        started = time.perf_counter()
        raw = client.chat.completions.with_raw_response.create(model=model, max_tokens=max_tokens, temperature=0.0,
                                                               messages=_question(i))
        waited.append(1000 * (time.perf_counter() - started))
        model_call.append(model_call_ms(raw.headers))
    return waited, model_call


def model_call_ms(headers) -> float:
    """The model call inside one gateway answer, as the gateway timed it (its total minus its own overhead)."""
    try:
        return float(headers[TOTAL_HEADER]) - float(headers[OVERHEAD_HEADER])
    except (KeyError, TypeError, ValueError) as missing:
        raise WorkshopError(f"the gateway's answer has no usable {TOTAL_HEADER} / {OVERHEAD_HEADER} headers "
                            f"({missing!r}): is it LiteLLM with the workshop's image (images/Containerfile.gateway)?"
                            ) from missing


def direct_leg(gateway: Gateway | ClusterGateway) -> str:
    """How ``latency_overhead`` measures the direct leg on this platform (for the notebook to say)."""
    if isinstance(gateway, ClusterGateway):
        return ("direct leg: the model call as the gateway's pod timed it (the shared models take traffic from the "
                "gateway only); through the gateway: as this notebook waited")
    return "direct leg: this notebook to vLLM; through the gateway: this notebook to the gateway; alternating"


def bench_route(gateway: Gateway | ClusterGateway, key: str) -> tuple[str, str] | None:
    """Where a lab's GuideLLM load goes (``run_benchmark(..., via=...)``): on this machine straight to the model
    (None), as it always did; on a cluster through the gateway with the attendee's key, since the shared models
    take traffic from the gateway only (NetworkPolicy). Billed to that key like any other request."""
    return (gateway.url, key) if isinstance(gateway, ClusterGateway) else None


def _summary(p50_direct: float, p50_gateway: float) -> dict[str, float]:
    return {"p50_direct_ms": p50_direct, "p50_gateway_ms": p50_gateway,
            "overhead_ms": p50_gateway - p50_direct, "ratio": p50_gateway / p50_direct}


def gateway_timed_overhead(base_url: str, key: str, model: str, requests_count: int = 40,
                           max_tokens: int = 16) -> dict[str, float]:
    """p50 latency through the gateway as this notebook waits, against the p50 model call as the gateway timed
    it inside the same answers: what can be measured where the models take traffic from the gateway only."""
    import statistics

    import openai

    through = openai.OpenAI(base_url=base_url, api_key=key, max_retries=2)
    _gateway_timed_ms(through, model, 3, max_tokens)  # warm the path
    waited, model_call = _gateway_timed_ms(through, model, requests_count, max_tokens)
    return _summary(statistics.median(model_call), statistics.median(waited))


def latency_overhead(deployment, gateway: Gateway | ClusterGateway, key: str, requests_count: int = 40,
                     max_tokens: int = 16) -> dict[str, float]:
    """p50 latency of the same requests direct to the model and through the gateway.

    Locally both legs from this notebook, one run, alternating. On a cluster the shared models take traffic
    from the gateway only (NetworkPolicy): every request goes through the gateway, and the direct leg is the
    model call as the gateway's pod timed it (``gateway_timed_overhead``; ``direct_leg`` says which)."""
    import openai

    if isinstance(gateway, ClusterGateway):
        return gateway_timed_overhead(gateway.url, key, deployment.name, requests_count, max_tokens)
    direct = openai.OpenAI(base_url=deployment.endpoint, api_key="none", max_retries=2)
    through = openai.OpenAI(base_url=gateway.url, api_key=key, max_retries=2)
    _p50_latency_ms(direct, deployment.name, 3, max_tokens)  # warm both paths
    _p50_latency_ms(through, deployment.name, 3, max_tokens)
    half = requests_count // 2
    direct_ms = [_p50_latency_ms(direct, deployment.name, half, max_tokens)]
    gateway_ms = [_p50_latency_ms(through, deployment.name, half, max_tokens)]
    direct_ms.append(_p50_latency_ms(direct, deployment.name, half, max_tokens))
    gateway_ms.append(_p50_latency_ms(through, deployment.name, half, max_tokens))
    return _summary(sum(direct_ms) / 2, sum(gateway_ms) / 2)
