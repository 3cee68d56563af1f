"""Exercise checks: a right answer passes, each typical wrong answer gets its own hint."""
import math

import pandas as pd
import pytest

from helpers import checks
from helpers.errors import CheckFailed

TTFT, TPOT = 500, 25
# a sweep: rows 0-1 meet the SLO (row 1 exactly at both limits), row 2 breaks TPOT only, row 3 TTFT only
SWEEP = pd.DataFrame({
    "strategy": ["synchronous", "constant", "constant", "throughput"],
    "target_rate": [None, 2.0, 3.0, None],
    "requests_per_s": [1.0, 1.9, 2.8, 4.0],
    "ttft_p50_ms": [100, 200, 300, 450],
    "ttft_p95_ms": [150, 500, 400, 900],
    "tpot_p50_ms": [5, 10, 20, 20],
    "tpot_p95_ms": [10, 25, 40, 24],
})


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.setenv("MAAS_STRICT_CHECKS", "0")


def test_the_right_slo_filter_and_rate_pass(capsys):
    meets = SWEEP[(SWEEP.ttft_p95_ms <= TTFT) & (SWEEP.tpot_p95_ms <= TPOT)]
    assert checks.check_slo_filter(meets, meets.requests_per_s.max(), SWEEP, TTFT, TPOT) is True
    assert "1.90 requests/s" in capsys.readouterr().out


@pytest.mark.parametrize("meets, hint", [
    (SWEEP[SWEEP.ttft_p95_ms <= TTFT], "over the TPOT SLO"),  # forgot the TPOT limit
    (SWEEP[SWEEP.tpot_p95_ms <= TPOT], "over the TTFT SLO"),  # forgot the TTFT limit
    (SWEEP[(SWEEP.ttft_p95_ms <= TTFT) | (SWEEP.tpot_p95_ms <= TPOT)], "over the TTFT SLO"),  # | instead of &
    (SWEEP[SWEEP.ttft_p50_ms <= TTFT], "on the p95 columns"),  # the medians
    (SWEEP[(SWEEP.ttft_p95_ms < TTFT) & (SWEEP.tpot_p95_ms < TPOT)], "exactly at a limit"),  # < for <=
    (SWEEP.head(0), "left out 2 row(s)"),
    (SWEEP.reset_index(drop=True).iloc[[0, 1]].set_axis([7, 8]), "not in `table`"),
    ([1.0, 1.9], "a DataFrame"),
])
def test_a_wrong_slo_filter_says_what_differs(meets, hint):
    assert hint in checks.slo_filter_mistake(meets, SWEEP, TTFT, TPOT)


@pytest.mark.parametrize("rate, hint", [
    (4.0, "highest rate of the whole sweep"),
    (2.0, "target_rate"),
    (1.0, "expected the largest requests_per_s"),
    (SWEEP.requests_per_s.head(2), "one number"),
])
def test_a_wrong_max_rate_says_what_differs(rate, hint):
    assert hint in checks.max_rate_mistake(rate, SWEEP, TTFT, TPOT)


def test_no_row_within_the_slo_means_a_rate_of_zero():
    tight = dict(ttft_p95_ms=10, tpot_p95_ms=1)
    assert "0.0" in checks.max_rate_mistake(float("nan"), SWEEP, **tight)
    assert checks.max_rate_mistake(0.0, SWEEP, **tight) is None


def test_a_wrong_slo_filter_fails_the_check_with_its_hint(capsys, monkeypatch):
    assert checks.check_slo_filter(SWEEP, 4.0, SWEEP, TTFT, TPOT) is False
    assert "Not yet: you kept 1 row(s) over the TTFT SLO" in capsys.readouterr().out
    assert checks.check_slo_filter(None, None, SWEEP, TTFT, TPOT) is False
    assert "Not yet: meets_slo is still None" in capsys.readouterr().out
    monkeypatch.setenv("MAAS_STRICT_CHECKS", "1")
    with pytest.raises(CheckFailed, match="highest rate of the whole sweep"):
        checks.check_slo_filter(SWEEP.head(2), 4.0, SWEEP, TTFT, TPOT)


from helpers.capacity import Assumptions  # noqa: E402

DEMAND = Assumptions(employees=19_000, active_share=0.25, requests_per_active_user_per_hour=6, peak_factor=3)
PEAK = 19_000 * 0.25 * 6 / 3600 * 3  # 23.75 requests/s
RATE = 2.0  # per replica: 11.875 replicas' worth -> 12


def test_the_right_peak_and_replicas_pass(capsys):
    assert checks.check_capacity_plan(PEAK, 12, DEMAND, RATE) is True
    assert "12 replicas" in capsys.readouterr().out


@pytest.mark.parametrize("peak, hint", [
    (PEAK / 3, "forgot the peak factor"),
    (PEAK * 3600, "requests per HOUR"),
    (PEAK * 3600 / 3, "requests per HOUR"),
    (PEAK / 0.25, "active share"),
    (PEAK + 1, "expected 23.75"),
    ("23.75", "one number"),
])
def test_a_wrong_peak_says_which_factor(peak, hint):
    assert hint in checks.peak_mistake(peak, DEMAND)


@pytest.mark.parametrize("replicas, hint", [
    (PEAK / RATE, "forgot the ceiling"),  # 11.875
    (11, "round UP with math.ceil"),  # int() or floor
    (4, "the average hour"),  # ceil(11.875 / 3)
    (48, "not multiply"),  # ceil(23.75 * 2)
    (20, "expected 12"),
    ([12], "whole number"),
])
def test_wrong_replicas_say_what_is_missing(replicas, hint):
    assert hint in checks.replicas_mistake(replicas, DEMAND, RATE)


def test_replicas_accept_an_integer_valued_float_and_the_plain_ceiling():
    assert checks.replicas_mistake(12.0, DEMAND, RATE) is None
    exact = Assumptions(employees=4_800, active_share=0.25, requests_per_active_user_per_hour=6, peak_factor=3)
    assert checks.replicas_mistake(math.ceil(exact.peak_requests_per_s() / 1.0), exact, 1.0) is None


def test_a_wrong_capacity_plan_fails_the_check_with_its_hint(capsys, monkeypatch):
    assert checks.check_capacity_plan(PEAK / 3, 4, DEMAND, RATE) is False
    assert "Not yet: that is the day's average hour" in capsys.readouterr().out
    assert checks.check_capacity_plan(None, None, DEMAND, RATE) is False
    assert "Not yet: peak is still None" in capsys.readouterr().out
    monkeypatch.setenv("MAAS_STRICT_CHECKS", "1")
    with pytest.raises(CheckFailed, match="forgot the ceiling"):
        checks.check_capacity_plan(PEAK, PEAK / RATE, DEMAND, RATE)


BY_APP = pd.DataFrame({"application": ["chat", "agent", "search"], "requests": [50, 5, 9],
                       "prompt_tokens": [1000, 3000, 200], "completion_tokens": [500, 2000, 100]})
BY_APP["tokens"] = BY_APP.prompt_tokens + BY_APP.completion_tokens
EXPECTED_BY_APP = BY_APP.set_index("application").sort_values("tokens", ascending=False)  # as rollups.usage_by


def answer(column: str = "tokens", ascending: bool = False) -> pd.DataFrame:
    """A query result: application and `column` AS tokens."""
    rows = BY_APP[["application", column]].rename(columns={column: "tokens"})
    return rows.sort_values("tokens", ascending=ascending, ignore_index=True)


def test_the_right_tokens_by_application_pass(capsys):
    assert checks.check_tokens_by_application(answer(), EXPECTED_BY_APP) is True
    assert "agent with" in capsys.readouterr().out


@pytest.mark.parametrize("result, hint", [
    (answer().rename(columns={"tokens": "sum"}), "AS tokens"),
    (answer().assign(model="tiny"), "expected two"),
    (pd.concat([answer(), answer()], ignore_index=True), "several rows"),
    (answer().head(2), "read every row"),
    (answer("completion_tokens"), "completion tokens only"),
    (answer("prompt_tokens"), "prompt tokens only"),
    (answer("requests"), "requests, not tokens"),
    (answer().assign(tokens=[1, 2, 3]), "the token sums differ"),
    (answer(ascending=True), "ORDER BY tokens DESC"),
])
def test_a_wrong_tokens_by_application_query_says_what_differs(result, hint):
    assert hint in checks.tokens_by_application_mistake(result, EXPECTED_BY_APP)


def test_an_unwritten_query_is_not_yet(capsys):
    assert checks.check_tokens_by_application(None, EXPECTED_BY_APP) is False
    assert "Not yet: tokens_by_application_sql is still None" in capsys.readouterr().out


from helpers import kserve  # noqa: E402

MODEL = kserve.ModelDeployment("granite-3-1-2b-instruct", kserve.DEFAULT_MODELCAR)
GPU_ONE = {"nvidia.com/gpu": "1"}
L4_FIELDS = {
    "resources": {"requests": dict(GPU_ONE), "limits": dict(GPU_ONE)},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
}


def l4(**changes) -> dict:
    return {**L4_FIELDS, **changes}


def test_the_right_l4_fields_pass(capsys):
    assert checks.check_l4_fields(L4_FIELDS, MODEL) is True
    assert checks.l4_fields_mistake(l4(resources={"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}}),
                                    MODEL) is None  # an integer quantity is fine too
    assert "one L4" in capsys.readouterr().out


@pytest.mark.parametrize("fields, hint", [
    (l4(nodeselector=L4_FIELDS["nodeSelector"]), "kserve.validate refuses it"),  # a typo Kubernetes would drop
    (l4(tolerations={"key": "nvidia.com/gpu"}), "kserve.validate refuses it"),  # a dict, not a list
    ({k: v for k, v in L4_FIELDS.items() if k != "nodeSelector"}, "lacks ['nodeSelector']"),
    (l4(resources={"limits": GPU_ONE}), "resources.requests has no 'nvidia.com/gpu'"),
    (l4(resources={"requests": GPU_ONE}), "needs a limit too"),
    (l4(resources={"requests": GPU_ONE, "limits": {"nvidia.com/gpu": "2"}}), "requests = limits"),
    (l4(resources={"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}), "fits one L4"),
    (l4(tolerations=[]), "no toleration has key 'nvidia.com/gpu'"),
    (l4(tolerations=[{"key": "nvidia.com/gpu", "operator": "Equal", "effect": "NoSchedule"}]), "operator \"Exists\""),
    (l4(tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}]), "\"NoSchedule\""),
    (l4(nodeSelector={"gpu": "L4"}), "'nvidia.com/gpu.product'"),
    (l4(nodeSelector={"nvidia.com/gpu.product": "L4"}), "is 'NVIDIA-L4'"),
    ("nvidia.com/gpu: 1", "should be a dict"),
])
def test_wrong_l4_fields_say_which_field(fields, hint):
    assert hint in checks.l4_fields_mistake(fields, MODEL)


def test_unwritten_l4_fields_are_not_yet(capsys):
    assert checks.check_l4_fields(None, MODEL) is False
    assert "Not yet: l4_fields is still None" in capsys.readouterr().out


class GPTQModifier:  # the check reads a modifier's class name, scheme and ignore list, as llmcompressor's has them
    def __init__(self, scheme: str = "W4A16", ignore: list[str] | None = None, targets: str = "Linear"):
        self.scheme, self.ignore, self.targets = scheme, ignore, targets


class SmoothQuantModifier:
    pass


def test_the_right_recipe_passes(capsys):
    assert checks.check_w4a16_recipe([GPTQModifier(ignore=["lm_head"])]) is True
    assert checks.w4a16_recipe_mistake(GPTQModifier(ignore=["lm_head"])) is None  # one modifier without a list


@pytest.mark.parametrize("recipe, hint", [
    ([SmoothQuantModifier()], "one GPTQModifier; it holds ['SmoothQuantModifier']"),
    ([GPTQModifier(ignore=["lm_head"])] * 2, "should hold one GPTQModifier"),
    ([GPTQModifier("W8A8", ignore=["lm_head"])], "4 bits"),
    ([GPTQModifier()], "lm_head is quantized too"),
    ([GPTQModifier(ignore=["embed_tokens"])], "lm_head is quantized too"),
])
def test_a_wrong_recipe_says_what_differs(recipe, hint):
    assert hint in checks.w4a16_recipe_mistake(recipe)


LIVE = pd.DataFrame({"team": ["blue", "blue", "red", "green"], "cost_usd": [0.5, 0.25, 1.0, 0.125],
                     "tokens": [10, 40, 5, 100], "prompt_tokens": [6, 30, 3, 60], "completion_tokens": [4, 10, 2, 40],
                     "user_name": ["ann", "bob", "cy", "di"]})


def test_the_right_team_bill_passes(capsys):
    right = LIVE.groupby("team")["cost_usd"].sum().sort_values(ascending=False)
    assert checks.check_team_bill(right, LIVE) is True
    assert "red pays $1.000000" in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    (LIVE.groupby("team")[["cost_usd"]].sum(), "a Series indexed by team"),
    (LIVE.groupby("user_name")["cost_usd"].sum(), "group by team"),
    (LIVE.groupby("team")["tokens"].sum().sort_values(ascending=False), "sums tokens, not dollars"),
    (LIVE.groupby("team")["completion_tokens"].sum(), "sums completion tokens"),
    (LIVE[LIVE["cost_usd"] > 0.2].groupby("team")["cost_usd"].sum(), "the sums differ"),
    (LIVE.groupby("team")["cost_usd"].sum(), "the order is not"),
])
def test_a_wrong_team_bill_says_what_differs(answer, hint):
    assert hint in checks.team_bill_mistake(answer, LIVE)


def test_no_team_bill_yet_is_not_yet(capsys):
    assert checks.check_team_bill(None, LIVE) is False
