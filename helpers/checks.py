"""Check cells: tell the attendee whether a step worked, and what to try if not.

In a lab, a failed check prints a hint and the notebook goes on. When
``MAAS_STRICT_CHECKS=1`` (CI, ``run-labs``) a failed check raises, so a broken
solution can never pass unnoticed.
"""
from __future__ import annotations

import math
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


def check_w4a16_recipe(recipe) -> bool:
    """Lab 2: a GPTQ recipe for 4-bit weights that leaves lm_head alone."""
    if not check_done(recipe, "recipe", "Build a list with one GPTQModifier."):
        return False
    modifiers = recipe if isinstance(recipe, list) else [recipe]
    gptq = [m for m in modifiers if type(m).__name__ == "GPTQModifier"]
    ok = len(gptq) == 1 and str(gptq[0].scheme).upper() == "W4A16" and "lm_head" in (gptq[0].ignore or [])
    return check(ok, "a GPTQ W4A16 recipe that keeps lm_head in full precision",
                 'expected [GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])]')


def check_replicas_for_peak(replicas, assumptions, peak_factor: float, rate_per_replica: float,
                            name: str = "replicas") -> bool:
    """Lab 3: replicas for another peak factor, the rest of the assumptions unchanged."""
    if not check_done(replicas, name, "Call capacity.replicas_needed(...) with the new peak factor."):
        return False
    peak = (assumptions.employees * assumptions.active_share * assumptions.requests_per_active_user_per_hour
            / 3600 * peak_factor)
    expected = max(1, math.ceil(round(peak / rate_per_replica, 9)))
    if replicas == expected:
        return check(True, f"{replicas} replicas serve a peak of {peak:.1f} requests/s "
                           f"at {rate_per_replica:.2f} requests/s each", "")
    if replicas == assumptions.employees:
        hint = "that is one per employee: divide the peak requests per second by the rate one replica sustains"
    elif isinstance(replicas, float) and not float(replicas).is_integer():
        hint = "replicas come whole: round up with math.ceil"
    else:
        hint = (f"expected {expected} for a peak of {peak:.1f} requests/s; did you pass peak_factor={peak_factor} "
                "and requests per HOUR (the function divides by 3600)?")
    return check(False, "", hint)
