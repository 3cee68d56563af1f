"""Talk to a deployed model with the ``openai`` client, with clear errors."""
from __future__ import annotations

import openai

from .errors import ServerDiedError
from .platform import Deployment, get_platform

LOCAL_API_KEY = "local-platform-needs-no-key"  # vLLM runs without auth locally


def openai_client(deployment: Deployment, api_key: str = LOCAL_API_KEY, timeout_s: float = 60.0,
                  max_retries: int = 2) -> openai.OpenAI:
    """An OpenAI client pointed at a deployment's endpoint.

    Retries cover the race where the server closes an idle keep-alive connection
    just as the client reuses it ("Server disconnected without sending a response").
    """
    return openai.OpenAI(base_url=deployment.endpoint, api_key=api_key, timeout=timeout_s, max_retries=max_retries)


def ask(deployment: Deployment, question: str, max_tokens: int = 16) -> str:
    """One chat completion; a dead server is reported as such, not as a socket error."""
    try:
        reply = openai_client(deployment).chat.completions.create(
            model=deployment.name,
            messages=[{"role": "user", "content": question}],
            max_tokens=max_tokens,
            temperature=0.0,
        )
    except (openai.APIConnectionError, openai.InternalServerError) as error:
        get_platform().get(deployment.name)  # raises ServerDiedError with the log tail
        raise ServerDiedError(f"{deployment.endpoint} did not answer: {error}") from error
    return reply.choices[0].message.content.strip()
