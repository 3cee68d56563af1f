"""The portal's HTML: Jinja2 templates (helpers/gateway/templates) with autoescaping on and strict undefined.

No web framework here, so pages render (and are tested) in any venv with Jinja2. Every page gets a fresh
nonce: its only style and script carry it, and the Content-Security-Policy allows nothing else.
"""
from __future__ import annotations

import secrets
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"
environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)


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
