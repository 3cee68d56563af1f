"""Parasol's demand, defined once: who uses the service, how much, and when.

Lab 3 sizes the GPUs from it (``capacity.Assumptions.from_profile``) and Lab 6 generates its
synthetic month from it (``synthetic.synthetic_month``), so the month Lab 6 analyses is the demand
Lab 3 planned for: about 10 M requests, busiest at 09:00 on a weekday (the spike of the talk's
usage dashboard).

    >>> from helpers import company
    >>> profile = company.CompanyProfile()
    >>> company.expected_requests(profile)        # requests in the pinned month
    >>> company.peak_hour(), company.peak_requests_per_s(profile)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Requests per hour of a working day (UTC), relative: the morning spike at 09:00, a lunch dip, an afternoon.
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 4, 10, 24, 32, 30, 28, 16, 24, 30, 29, 24, 16, 9, 6, 4, 3, 2, 1], float)
WEEKDAY_WEIGHTS = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.12, 0.08])  # Monday .. Sunday
# The month is pinned (October 2026, Thursday 1 to Friday 30): its size must not move with the day it is made.
MONTH_END = pd.Timestamp("2026-10-31", tz="UTC")


@dataclass(frozen=True)
class CompanyProfile:
    """How Parasol's employees use the service; change the fields to match your company."""

    employees: int = 19_000
    teams: int = 60
    adoption: float = 0.72  # share of employees who use the service in the month
    requests_per_user_day_median: float = 15.0  # on a weekday, for a median user
    activity_sigma: float = 1.3  # lognormal spread of users' activity: the heavy tail
    prompt_tokens_median: float = 350.0
    completion_tokens_median: float = 160.0
    models: dict[str, float] = field(default_factory=lambda: {
        "granite-3.1-8b-instruct": 0.50, "llama-3.1-8b-instruct-w4a16": 0.30,
        "mistral-7b-instruct-v0.3": 0.12, "deepseek-r1-distill-qwen-14b-w4a16": 0.08})
    status: dict[str, float] = field(default_factory=lambda: {
        "success": 0.992, "failure": 0.003, "rate_limited": 0.004, "refused:budget_exceeded": 0.001})

    def mean_requests_per_user_day(self) -> float:
        """A user's mean requests on a weekday of weight 1: the median times the lognormal's mean factor."""
        return self.requests_per_user_day_median * float(np.exp(self.activity_sigma ** 2 / 2))


def period(days: int, end: pd.Timestamp = MONTH_END) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first day and the end of ``days`` days ending at ``end``."""
    end = end.floor("h")
    return (end - pd.Timedelta(days=days)).floor("D"), end


def day_weights(start: pd.Timestamp, days: int) -> np.ndarray:
    """Each day's weight (its weekday's) from ``start`` on."""
    weekdays = (start + pd.to_timedelta(np.arange(days), "D")).dayofweek
    return WEEKDAY_WEIGHTS[weekdays]


def expected_requests(profile: CompanyProfile = CompanyProfile(), days: int = 30, end: pd.Timestamp = MONTH_END) -> float:
    """The mean number of requests in ``days`` days: users x mean daily rate x the days' weights."""
    start, _ = period(days, end)
    return profile.employees * profile.adoption * profile.mean_requests_per_user_day() * day_weights(start, days).sum()


def peak_hour() -> int:
    """The busiest hour of the day (UTC): 9, the 09:00 spike."""
    return int(HOUR_WEIGHTS.argmax())


def peak_factor() -> float:
    """The busiest hour against the average hour of the same day."""
    return float(HOUR_WEIGHTS.max() / HOUR_WEIGHTS.mean())


def busiest_day_weight() -> float:
    """The weight of the busiest weekday (Tuesday and Wednesday)."""
    return float(WEEKDAY_WEIGHTS.max())


def peak_requests_per_s(profile: CompanyProfile = CompanyProfile()) -> float:
    """Mean requests per second in the busiest hour (09:00 on the busiest weekday)."""
    per_day = profile.employees * profile.adoption * profile.mean_requests_per_user_day() * busiest_day_weight()
    return per_day * HOUR_WEIGHTS.max() / HOUR_WEIGHTS.sum() / 3600
