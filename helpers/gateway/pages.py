"""The portal's HTML: Jinja2 templates (helpers/gateway/templates) with autoescaping on and strict undefined,
and the usage pages' numbers and charts (``usage_view``).

No web framework here, so pages render (and are tested) in any venv with Jinja2. Every page gets a fresh
nonce: its only style and script carry it, and the Content-Security-Policy allows nothing else.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from . import charts, portal_data

TEMPLATES = Path(__file__).parent / "templates"
environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
environment.filters["usd"] = lambda value: f"${value:,.2f}" if value >= 1 else f"${value:.6f}"  # cents, or tiny sums


def security_headers(nonce: str) -> dict[str, str]:
    """Out of caches (a key is on the page once) and frames; no script, style or image from anywhere else."""
    return {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
                                       "img-src 'self' data:; form-action 'self'; base-uri 'none'; "
                                       "frame-ancestors 'none'"}


def render(template: str, **context) -> tuple[str, dict[str, str]]:
    """A page's HTML and the headers to send with it."""
    nonce = secrets.token_urlsafe(16)
    return environment.get_template(template).render(nonce=nonce, **context), security_headers(nonce)


def _labels(rows: list[dict], unit: str) -> list[str]:
    return [row["period"].astimezone(timezone.utc).strftime("%H:00" if unit == "hour" else "%m-%d") for row in rows]


def usage_view(dsn: str, user: str | None, application: str | None = None, model: str | None = None,
               now: datetime | None = None) -> dict:
    """The numbers and charts of a usage page (one user's, or everyone's when user is None), all read from one
    snapshot of the rollups."""
    day_end = portal_data.window_end("day", now)
    with portal_data.snapshot(dsn) as db:
        hours = portal_data.usage_series(db, "hour", 24, user, portal_data.window_end("hour", now), application, model)
        days = portal_data.usage_series(db, "day", 30, user, day_end, application, model)
        breakdown = portal_data.usage_breakdown(db, day_end - timedelta(days=30), day_end, user)
    chart = {}
    for name, rows, unit, every in (("hour", hours, "hour", 3), ("day", days, "day", 5)):
        for measure in ("tokens", "requests"):
            title = f"{measure.capitalize()} per {unit}"
            chart[f"{name}_{measure}"] = Markup(charts.bar_chart(  # noqa: S704 - every text escaped in bar_chart
                _labels(rows, unit), [row[measure] for row in rows], title, measure, every))
    totals = {"day_tokens": sum(r["tokens"] for r in hours), "day_requests": sum(r["requests"] for r in hours),
              "month_tokens": sum(r["tokens"] for r in days), "month_requests": sum(r["requests"] for r in days)}
    return {"charts": chart, "totals": totals, "breakdown": breakdown, "hours": hours, "days": days}
