"""Check cells: tell the attendee whether a step worked, and what to try if not.

In a lab, a failed check prints a hint and the notebook goes on. When
``MAAS_STRICT_CHECKS=1`` (CI, ``run-labs``) a failed check raises, so a broken
solution can never pass unnoticed.

An exercise's check compares the attendee's answer with the helpers' own
computation: a ``..._mistake`` function names what differs (None when right),
so each typical wrong answer gets its own hint, and ``check_...`` prints it.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np
import pandas as pd

from . import kserve
from .bench import within_slo
from .capacity import SECONDS_PER_HOUR, Assumptions, max_rate_within_slo, replicas_for
from .errors import CheckFailed
from .kserve import ModelDeployment


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


def w4a16_recipe_mistake(recipe) -> str | None:
    """Lab 2: what is wrong with the attendee's W4A16 GPTQ recipe; None if nothing."""
    modifiers = recipe if isinstance(recipe, list) else [recipe]
    gptq = [m for m in modifiers if type(m).__name__ == "GPTQModifier"]
    if len(gptq) != 1:
        return f"the recipe should hold one GPTQModifier; it holds {[type(m).__name__ for m in modifiers]}"
    modifier = gptq[0]
    if str(modifier.scheme).upper() != "W4A16":
        return f"scheme {modifier.scheme!r}: this recipe quantizes weights to 4 bits and keeps activations in 16"
    if "lm_head" not in (modifier.ignore or []):
        return "lm_head is quantized too: the output layer stays in full precision (ignore it, in a list)"
    return None


def check_w4a16_recipe(recipe) -> bool:
    """Lab 2: a GPTQ recipe for 4-bit weights that leaves lm_head alone."""
    if not check_done(recipe, "recipe", "Build a list with one GPTQModifier."):
        return False
    return _mistake_or_success(w4a16_recipe_mistake(recipe), "a GPTQ W4A16 recipe that keeps lm_head in full precision")


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


def _mistake_or_success(mistake: str | None, success: str) -> bool:
    """check() with the hint a ``..._mistake`` function found (None: right)."""
    return check(mistake is None, success, mistake or "")


def slo_filter_mistake(meets_slo, table: pd.DataFrame, ttft_p95_ms: float, tpot_p95_ms: float) -> str | None:
    """Lab 1: what differs between the attendee's rows within the SLO and ``bench.within_slo``'s; None if nothing."""
    if not isinstance(meets_slo, pd.DataFrame):
        return f"meets_slo should be rows of `table` (a DataFrame: table[mask]), got a {type(meets_slo).__name__}"
    if not set(meets_slo.index) <= set(table.index):
        return "meets_slo holds rows that are not in `table`: filter `table` with a mask, keep its index"
    kept = table.loc[list(meets_slo.index)]
    expected = within_slo(table, ttft_p95_ms=ttft_p95_ms, tpot_p95_ms=tpot_p95_ms)
    over_ttft, over_tpot = kept[kept.ttft_p95_ms > ttft_p95_ms], kept[kept.tpot_p95_ms > tpot_p95_ms]
    if len(over_ttft):
        return (f"you kept {len(over_ttft)} row(s) over the TTFT SLO (ttft_p95_ms > {ttft_p95_ms}): "
                "the SLO is on the p95 columns, and a row must meet both limits")
    if len(over_tpot):
        return (f"you kept {len(over_tpot)} row(s) over the TPOT SLO (tpot_p95_ms > {tpot_p95_ms}): "
                "the SLO is on the p95 columns, and a row must meet both limits")
    dropped = expected.loc[[i for i in expected.index if i not in set(meets_slo.index)]]
    if len(dropped):
        at_limit = ((dropped.ttft_p95_ms == ttft_p95_ms) | (dropped.tpot_p95_ms == tpot_p95_ms)).any()
        why = "a row exactly at a limit meets it ('at or under')" if at_limit else "keep every row that meets both"
        return f"you left out {len(dropped)} row(s) that meet the SLO: {why}"
    return None


def max_rate_mistake(max_rate, table: pd.DataFrame, ttft_p95_ms: float, tpot_p95_ms: float) -> str | None:
    """Lab 1: what is wrong with the highest request rate within the SLO; None if it is right."""
    expected = max_rate_within_slo(table, ttft_p95_ms=ttft_p95_ms, tpot_p95_ms=tpot_p95_ms)
    if not isinstance(max_rate, numbers.Real):
        return "max_rate_within_slo should be one number: the largest requests_per_s of the rows you kept"
    if expected == 0.0 and math.isnan(max_rate):
        return "no load level meets the SLO, and max() of no rows is NaN: the rate is then 0.0"
    if math.isclose(max_rate, expected, rel_tol=1e-9, abs_tol=1e-12):
        return None
    if math.isclose(max_rate, table.requests_per_s.max(), rel_tol=1e-9):
        return "that is the highest rate of the whole sweep: take it among the rows that meet the SLO"
    if max_rate in set(table.target_rate.dropna()):
        return "that is a rate GuideLLM aimed at (target_rate): take the rate it measured, requests_per_s"
    return f"expected the largest requests_per_s among the rows that meet the SLO ({expected:.2f})"


def check_slo_filter(meets_slo, max_rate, table: pd.DataFrame, ttft_p95_ms: float, tpot_p95_ms: float) -> bool:
    """Lab 1: the load levels within the SLO, and the highest request rate among them."""
    if not check_done(meets_slo, "meets_slo", "Filter `table` on its two p95 columns."):
        return False
    if not _mistake_or_success(slo_filter_mistake(meets_slo, table, ttft_p95_ms, tpot_p95_ms),
                               f"{len(meets_slo)} of {len(table)} load levels meet the SLO"):
        return False
    return _mistake_or_success(max_rate_mistake(max_rate, table, ttft_p95_ms, tpot_p95_ms),
                               f"one replica sustains {max_rate or 0.0:.2f} requests/s within the SLO")


def _close(value: float, target: float) -> bool:
    return math.isclose(value, target, rel_tol=1e-6)


def peak_mistake(peak, assumptions: Assumptions) -> str | None:
    """Lab 3: what is wrong with the attendee's peak requests per second; None if it is right."""
    expected = assumptions.peak_requests_per_s()
    if not isinstance(peak, numbers.Real):
        return f"peak should be one number, the requests per second at the busiest moment; got {type(peak).__name__}"
    if _close(peak, expected):
        return None
    per_hour = expected * SECONDS_PER_HOUR
    if _close(peak, expected / assumptions.peak_factor):
        return "that is the day's average hour: the busiest hour is peak_factor times it (you forgot the peak factor)"
    if _close(peak, per_hour) or _close(peak, per_hour / assumptions.peak_factor):
        return "that is requests per HOUR: the rate one replica sustains is per second (divide by 3600)"
    if _close(peak, expected / assumptions.active_share):
        return "not every employee uses it: multiply by the active share"
    return f"expected {expected:.2f} requests/s: check each factor of the formula above against the assumptions"


def replicas_mistake(replicas, assumptions: Assumptions, rate_per_replica: float) -> str | None:
    """Lab 3: what is wrong with the attendee's replica count; None if it is right."""
    expected = replicas_for(assumptions, rate_per_replica)
    share = assumptions.peak_requests_per_s() / rate_per_replica  # replicas' worth of load, a fraction
    if not isinstance(replicas, numbers.Real):
        return f"replicas should be a whole number; got {type(replicas).__name__}"
    if replicas in (expected, max(1, math.ceil(share))):
        return None
    if not float(replicas).is_integer():
        return f"{replicas:.2f} is not a whole number of replicas: round up with math.ceil (you forgot the ceiling)"
    if replicas in (math.floor(share), round(share)) and replicas < share:
        return (f"the peak needs {share:.2f} replicas' worth of capacity, and {replicas} is less: "
                "round UP with math.ceil (int() and round() can round down)")
    if replicas == math.ceil(share / assumptions.peak_factor):
        return "that serves the average hour, not the busiest moment: use the peak (with the peak factor)"
    if _close(replicas, math.ceil(assumptions.peak_requests_per_s() * rate_per_replica)):
        return "divide the peak requests/s by the rate one replica sustains (not multiply)"
    return f"expected {expected}: the peak requests/s divided by rate_per_replica, rounded up"


def check_capacity_plan(peak, replicas, assumptions: Assumptions, rate_per_replica: float) -> bool:
    """Lab 3: the peak requests per second and the replicas that serve it, as ``capacity`` computes them."""
    if not check_done(peak, "peak", "Write the peak requests/s formula with the assumptions."):
        return False
    if not _mistake_or_success(peak_mistake(peak, assumptions), f"a peak of {peak:.1f} requests/s"):
        return False
    if not check_done(replicas, "replicas", "Divide the peak by rate_per_replica, rounded up."):
        return False
    return _mistake_or_success(replicas_mistake(replicas, assumptions, rate_per_replica),
                               f"{replicas} replicas at {rate_per_replica:.2f} requests/s each serve it")


def tokens_by_application_mistake(answer: pd.DataFrame, expected: pd.DataFrame) -> str | None:
    """Lab 6: what differs between the attendee's query result and ``rollups.usage_by(dsn, "application")``
    (indexed by application, with prompt_tokens, completion_tokens, tokens and requests); None if nothing."""
    if list(answer.columns) != ["application", "tokens"]:
        return (f"your query returns the columns {list(answer.columns)}; expected two, application and tokens "
                "(name the sum with AS tokens)")
    if answer["application"].duplicated().any():
        return "some applications come back in several rows: one row per application (GROUP BY application only)"
    if set(answer["application"]) != set(expected.index):
        return (f"your query returns {len(answer)} applications, the rollups hold {len(expected)}: "
                "read every row of usage_monthly (no WHERE)")
    mine = {app: int(tokens) for app, tokens in zip(answer["application"], answer["tokens"])}
    for column, what in [("tokens", None), ("completion_tokens", "completion tokens only"),
                         ("prompt_tokens", "prompt tokens only"), ("requests", "requests, not tokens")]:
        if mine == {app: int(value) for app, value in expected[column].items()}:
            if what:
                return f"that counts {what}: an application's tokens are its prompt_tokens + completion_tokens"
            break
    else:
        return "the token sums differ from the rollups': sum prompt_tokens + completion_tokens over every row"
    if not pd.Series([int(t) for t in answer["tokens"]]).is_monotonic_decreasing:
        return "the sums are right, the order is not: heaviest first (ORDER BY tokens DESC)"
    return None


def check_tokens_by_application(answer, expected: pd.DataFrame) -> bool:
    """Lab 6: tokens per application from the monthly rollups, heaviest first."""
    if not check_done(answer, "tokens_by_application_sql", "Write the SELECT as a Python string."):
        return False
    top = expected.index[0]
    return _mistake_or_success(tokens_by_application_mistake(answer, expected),
                               f"{len(answer)} applications, heaviest first: {top} with "
                               f"{expected.loc[top, 'tokens'] / 1e6:,.0f} M tokens")


def team_bill_mistake(answer, live: pd.DataFrame) -> str | None:
    """Lab 6: what differs between the attendee's bill per team and the ledger's ``cost_usd`` summed per team,
    heaviest first; None if nothing."""
    if not isinstance(answer, pd.Series):
        return (f"team_bill should be a Series indexed by team (live.groupby(...)[column].sum()), "
                f"got a {type(answer).__name__}")
    if answer.index.name != "team":
        return f"your bill is indexed by {answer.index.name!r}: group by team"
    for column, what in [("cost_usd", None), ("tokens", "tokens"), ("completion_tokens", "completion tokens"),
                         ("prompt_tokens", "prompt tokens")]:
        sums = live.groupby("team")[column].sum()
        if set(answer.index) == set(sums.index) and np.allclose(answer.sort_index(), sums.sort_index()):
            if what:
                return f"that sums {what}, not dollars: the gateway priced every row in cost_usd"
            break
    else:
        return "the sums differ from the ledger's: sum cost_usd over every row of each team (no filter)"
    if not answer.is_monotonic_decreasing:
        return "the sums are right, the order is not: heaviest first (sort_values(ascending=False))"
    return None


def check_team_bill(answer, live: pd.DataFrame) -> bool:
    """Lab 6: the bill per team, one groupby over the live ledger."""
    if not check_done(answer, "team_bill", "Group `live` by team and sum a column."):
        return False
    return _mistake_or_success(team_bill_mistake(answer, live),
                               f"{len(answer)} team(s); {answer.index[0]} pays ${answer.iloc[0]:.6f} "
                               f"of ${answer.sum():.6f}")


def _gpu_mistake(resources: dict, gpu: str) -> str | None:
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    if gpu not in requests:
        return f"resources.requests has no {gpu!r}: the scheduler places a pod by what it requests"
    if gpu not in limits:
        return f"resources.limits has no {gpu!r}: a GPU is an extended resource, it needs a limit too"
    if str(requests[gpu]) != str(limits[gpu]):
        return f"{gpu} differs between requests and limits: GPUs are not shared, requests = limits"
    if str(requests[gpu]) != "1":
        return f"{gpu}: {requests[gpu]!r} GPUs: the model fits one L4 (\"1\")"
    return None


def _toleration_mistake(tolerations: list, taint_key: str) -> str | None:
    for_taint = [t for t in tolerations if isinstance(t, dict) and t.get("key") == taint_key]
    if not for_taint:
        return f"no toleration has key {taint_key!r}: the GPU nodes' taint keeps the pod away from them"
    if not any(t.get("operator") == "Exists" for t in for_taint):
        return "tolerate the taint whatever its value: operator \"Exists\""
    if not any(t.get("effect") in (None, "NoSchedule") for t in for_taint):
        return "the GPU nodes' taint has the effect \"NoSchedule\""
    return None


def l4_fields_mistake(fields, model: ModelDeployment) -> str | None:
    """Lab 4: what is wrong with the attendee's L4 fields of ``spec.predictor`` (resources, tolerations,
    nodeSelector), by ``kserve.validate`` and against ``kserve.inference_service``; None if nothing."""
    if not isinstance(fields, dict):
        return f"l4_fields should be a dict (resources, tolerations, nodeSelector), got {type(fields).__name__}"
    isvc = kserve.inference_service(model)
    predictor = isvc["spec"]["predictor"]
    for key in ("tolerations", "nodeSelector"):  # the attendee's, not the helper's
        predictor.pop(key, None)
    predictor["model"]["resources"] = fields.get("resources", {})
    predictor.update({key: value for key, value in fields.items() if key != "resources"})
    try:
        kserve.validate(isvc)
    except kserve.ManifestError as error:
        return f"kserve.validate refuses it: {error}"
    profile = model.profile
    scheduling = profile.scheduling()
    missing = [key for key in ("resources", "tolerations", "nodeSelector") if key not in fields]
    if missing:
        return f"l4_fields lacks {missing}"
    gpu = _gpu_mistake(fields["resources"], profile.taint_key)
    if gpu:
        return gpu
    toleration = _toleration_mistake(fields["tolerations"], profile.taint_key)
    if toleration:
        return toleration
    if fields["nodeSelector"] != scheduling["nodeSelector"]:
        label, value = next(iter(scheduling["nodeSelector"].items()))
        if label not in fields["nodeSelector"]:
            return f"select L4 nodes by the label GPU Feature Discovery gives them, {label!r}"
        return f"{label} of an L4 node is {value!r}, got {fields['nodeSelector'][label]!r}"
    return None


def check_l4_fields(fields, model: ModelDeployment) -> bool:
    """Lab 4: the InferenceService fields that put a model on one L4 GPU node."""
    if not check_done(fields, "l4_fields", "Write the three fields as a dict."):
        return False
    return _mistake_or_success(l4_fields_mistake(fields, model),
                               f"{model.name} validates and asks for one L4, as kserve.inference_service renders it")


def list_entry_mistake(entry, listed: list[str], cluster_models: list[str]) -> str | None:
    """Lab 7: what is wrong with Joe's entry for the list's ``local:`` section (None when right)."""
    from . import gitops, quantize

    if not isinstance(entry, dict) or set(entry) != {"name", "model", "stands_in_for"}:
        return "joes_model is a dict with exactly three keys: 'name', 'model' and 'stands_in_for'"
    if not gitops.DNS_LABEL.match(str(entry["name"])):
        return f"{entry['name']!r} cannot be a model name: a DNS label (a-z, 0-9 and '-', no dots)"
    if entry["name"] in listed:
        return f"{entry['name']!r} is listed already: each model is served once, under its own name"
    model = str(entry["model"])
    if model == "parasol-tiny":
        return "parasol-tiny is served already: the stand-in is another model, the tiny model's W8A8 copy"
    scheme = model.removeprefix("parasol-tiny-")
    if scheme == model or scheme not in quantize.SCHEMES:
        return f"'model' is what serves it here: 'parasol-tiny-<scheme>' (schemes {', '.join(quantize.SCHEMES)})"
    if not quantize.served_here(scheme):
        return f"this CPU's vLLM cannot serve {model}: {quantize.serving_plan([scheme])[2]}"
    if entry["stands_in_for"] not in cluster_models:
        return f"'stands_in_for' names a model of the cluster's list: one of {cluster_models}"
    if "llama" not in str(entry["stands_in_for"]):
        return f"Joe asked for Llama, not {entry['stands_in_for']}"
    return None


def check_list_entry(entry, listed: list[str], cluster_models: list[str]) -> bool:
    """Lab 7: Joe's model as one entry of the GitOps model list."""
    if not check_done(entry, "joes_model", "Write Joe's entry as a dict."):
        return False
    return _mistake_or_success(list_entry_mistake(entry, listed, cluster_models),
                               f"{entry.get('name')} ({entry.get('model')}) stands in for {entry.get('stands_in_for')}")
