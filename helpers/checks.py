"""Check cells: tell the attendee whether a step worked, and what to try if not.

In a lab, a failed check prints a hint and the notebook goes on. When
``MAAS_STRICT_CHECKS=1`` (CI, ``run-labs``) a failed check raises, so a broken
solution can never pass unnoticed.
"""
from __future__ import annotations

import os

from .errors import CheckFailed


def strict() -> bool:
    return os.environ.get("MAAS_STRICT_CHECKS", "0") == "1"


def check(passed: bool, success: str, hint: str) -> bool:
    """Print ✅ success or ❌ hint; raise CheckFailed instead in strict mode."""
    if passed:
        print(f"✅ {success}")
        return True
    if strict():
        raise CheckFailed(hint)
    print(f"❌ Not yet: {hint}")
    return False


def check_done(value, name: str, hint: str) -> bool:
    """An exercise left as a TODO leaves its variable at None."""
    return check(value is not None, f"{name} is set", f"{name} is still None. {hint}")


def check_chat_reply(reply) -> bool:
    """Lab 0: a chat completion came back with an answer in it."""
    if not check_done(reply, "reply", "Call client.chat.completions.create(...) and keep the result in `reply`."):
        return False
    answer = reply.choices[0].message.content.strip()
    return check(bool(answer) and reply.usage.completion_tokens > 0,
                 f"the shared model answered {answer!r} using {reply.usage.total_tokens} tokens",
                 "the reply is empty: did you pass model=shared.name and a user message?")
