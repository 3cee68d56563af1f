"""How sure a measured accuracy is: confidence intervals for a score and for a recovery.

On 200 questions, one answer more or less moves an accuracy by half a point, so a quantized model
can "recover" 100.6 % of its baseline by luck. Two intervals say how much luck:

- ``accuracy_interval``: a Wilson score interval for one accuracy (k right out of n, binomial);
- ``recovery_interval``: a paired bootstrap for quantized accuracy / baseline accuracy. Both models
  answered the same questions, so the questions are resampled together, which keeps what the two
  have in common (the easy and the hard questions) out of the noise.

``verdict`` turns a recovery interval into words: "within noise" when it holds 100 %.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054  # the standard normal quantile of a two-sided 95 % interval


@dataclass(frozen=True)
class Interval:
    """A measured value with its confidence interval."""

    value: float
    low: float
    high: float
    confidence: float = 0.95

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def __str__(self) -> str:
        return f"{self.value:.1%} [{self.low:.1%}, {self.high:.1%}]"


def accuracy_interval(correct: Sequence[int], z: float = Z_95) -> Interval:
    """Accuracy of 0/1 results with its Wilson score interval (95 % by default)."""
    n = len(correct)
    if n == 0:
        raise ValueError("no results: an accuracy needs at least one question")
    p = sum(correct) / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def recovery_interval(baseline: Sequence[int], quantized: Sequence[int], confidence: float = 0.95,
                      resamples: int = 10_000, seed: int = 0) -> Interval:
    """Recovery (quantized accuracy / baseline accuracy) with a paired bootstrap interval.

    ``baseline`` and ``quantized`` hold each question's 0/1 result, in the same question order.
    """
    base, quant = np.asarray(baseline, float), np.asarray(quantized, float)
    if base.shape != quant.shape or base.ndim != 1 or len(base) == 0:
        raise ValueError(f"both models need results for the same questions; got {base.shape} and {quant.shape}")
    if base.sum() == 0:
        raise ValueError("the baseline answered nothing right: recovery is undefined")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size=(resamples, len(base)))  # the same questions for both models
    base_right, quant_right = base[picks].sum(axis=1), quant[picks].sum(axis=1)
    ratios = quant_right[base_right > 0] / base_right[base_right > 0]
    tail = (1 - confidence) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return Interval(float(quant.sum() / base.sum()), float(low), float(high), confidence)


def verdict(recovery: Interval) -> str:
    """"within noise" when the interval holds 100 %; else a measured loss or gain."""
    if recovery.contains(1.0):
        return "within noise"
    return "a measured loss" if recovery.high < 1.0 else "a measured gain"


def recovery_table(per_question: dict[str, Sequence[int]], baseline: str = "baseline") -> "pd.DataFrame":
    """Per model: recovery against ``baseline`` with its 95 % paired bootstrap interval and its verdict.

    ``per_question``: model name -> each question's 0/1 result, the same questions in the same order.
    """
    import pandas as pd

    rows = {}
    for name, results in per_question.items():
        recovery = recovery_interval(per_question[baseline], results)
        rows[name] = {"recovery": recovery.value, "recovery_low": recovery.low, "recovery_high": recovery.high,
                      "verdict": verdict(recovery)}
    return pd.DataFrame(rows).T.astype({"recovery": float, "recovery_low": float, "recovery_high": float})
