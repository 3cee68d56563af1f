"""Which of LiteLLM's routes an application key may call, and which model each one reaches.

LiteLLM serves far more than the OpenAI API (``/v1/responses``, ``/v1/messages``, pass-through
routes straight to the model servers, admin routes...), and on some routes it picks the model
from the URL, not from the body. The gateway therefore admits application keys on an allowlist
only, and takes the model from where LiteLLM routes by. Pure functions: no LiteLLM import.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

BODY_MODEL_ROUTES = ("/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions",
                     "/v1/embeddings", "/embeddings")
URL_MODEL_ROUTE = re.compile(r"/(?:openai/deployments|engines)/(?P<model>[^/]+)/(?:chat/completions|completions|embeddings)")
LISTING_ROUTES = ("/v1/models", "/models")
OFFERED = "POST /v1/chat/completions, /v1/completions, /v1/embeddings; GET /v1/models"
# LiteLLM's own request options that send a request to another model: client-side fallbacks and router
# overrides. Its ``mock_*`` options (``mock_response`` answers without any model) are refused beside them.
ROUTING_OPTIONS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "router_settings_override")
TOKEN_ID_PROMPT = ("this gateway takes prompts as text: send 'prompt' as a string (or a list of strings), not "
                   "token IDs. With lm-eval, use local-completions with tokenized_requests=False, or "
                   "local-chat-completions.")


@dataclass(frozen=True)
class Refusal:
    status: int
    kind: str
    message: str


@dataclass(frozen=True)
class Admitted:
    model: str | None  # None: a route that reaches no model (the model list)


def _is_token_ids(prompt: object) -> bool:
    if isinstance(prompt, list) and prompt:
        first = prompt[0]
        return isinstance(first, int) or (isinstance(first, list) and all(isinstance(t, int) for t in first))
    return False


def classify(method: str, path: str, body: dict | None) -> Admitted | Refusal:
    """Admit a request on an offered route with the model it will reach, or say why not."""
    path = "/" + path.strip("/")
    if path in LISTING_ROUTES and method == "GET":
        return Admitted(None)
    url_match = URL_MODEL_ROUTE.fullmatch(path)
    if method != "POST" or not (path in BODY_MODEL_ROUTES or url_match):
        return Refusal(404, "route_not_offered", f"{method} {path} is not offered to application keys. "
                       f"This gateway offers {OFFERED}.")
    body = body if isinstance(body, dict) else {}
    named = body.get("model")
    if url_match:
        model = url_match["model"]
        if named is not None and named != model:
            return Refusal(400, "model_mismatch", f"the URL names model {model!r} but the body names {named!r}; "
                           "name one model (or use /v1/chat/completions with the model in the body)")
    else:
        model = named
    if not isinstance(model, str) or not model:
        return Refusal(400, "model_missing", "name the model in the request body: {\"model\": \"<model>\", ...}")
    options = sorted(k for k in body if k in ROUTING_OPTIONS or k.startswith("mock_"))  # JSON keys: strings
    if options:
        return Refusal(400, "routing_option", f"{', '.join(options)}: LiteLLM's routing and mock options are not "
                       f"offered; each request goes to the model it names ({model!r}). Remove them and retry.")
    if path.endswith("/completions") and not path.endswith("chat/completions") and _is_token_ids(body.get("prompt")):
        return Refusal(400, "token_id_prompt", TOKEN_ID_PROMPT)
    return Admitted(model)
