"""Capacity planning: from a GuideLLM sweep to the GPUs a whole company needs.

One replica (one copy of the model on its GPU) sustains a request rate while it
meets the SLO: the benchmark measures it (``max_rate_within_slo``). The company's
busiest hour follows from how people use the assistant (``Assumptions``, by default the
company profile of ``helpers.company`` that Lab 6's synthetic month is made from). Replicas needed = ceil(peak requests/s / rate per replica).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import pandas as pd

from . import company
from .bench import within_slo

SECONDS_PER_HOUR = 3600
SWEEP_COLUMNS = ("requests_per_s", "ttft_p95_ms", "tpot_p95_ms")


_COMPANY = company.CompanyProfile()


@dataclass(frozen=True)
class Assumptions:
    """How Parasol's employees use the internal assistant: by default the company profile
    (``company.CompanyProfile``) that Lab 6's synthetic month is generated from. Change them to match yours."""

    employees: int = field(default=_COMPANY.employees, metadata={
        "meaning": "people who may use the assistant (the talk's company: 19,000 employees)"})
    active_share: float = field(default=_COMPANY.adoption, metadata={
        "meaning": "share of them who use it in the month (the company profile's adoption)"})
    requests_per_active_user_per_hour: float = field(
        default=_COMPANY.mean_requests_per_user_day() * company.busiest_day_weight() / 24, metadata={
            "meaning": "an active user's mean requests per hour of the busiest weekday (the profile's daily rate / 24)"})
    peak_factor: float = field(default=company.peak_factor(), metadata={
        "meaning": "the busiest hour (09:00) against the day's average hour (the profile's hourly rhythm)"})

    @classmethod
    def from_profile(cls, profile: company.CompanyProfile) -> "Assumptions":
        """The demand of a company profile: its peak requests/s are ``company.peak_requests_per_s(profile)``."""
        return cls(profile.employees, profile.adoption,
                   profile.mean_requests_per_user_day() * company.busiest_day_weight() / 24, company.peak_factor())

    def __post_init__(self) -> None:
        _check_demand(self.employees, self.active_share, self.requests_per_active_user_per_hour, self.peak_factor)

    def peak_requests_per_s(self, employees: int | None = None) -> float:
        """Requests per second at the busiest moment (for ``employees`` people, default all)."""
        return peak_requests_per_s(self.employees if employees is None else employees, self.active_share,
                                   self.requests_per_active_user_per_hour, self.peak_factor)

    def table(self) -> pd.DataFrame:
        """Each assumption with its value and what it means."""
        rows = [{"assumption": f.name, "value": getattr(self, f.name), "meaning": f.metadata["meaning"]}
                for f in fields(self)]
        return pd.DataFrame(rows, dtype=object).set_index("assumption")


def _check_demand(users: float, active_share: float, requests_per_active_user_per_hour: float,
                  peak_factor: float) -> None:
    if users <= 0:
        raise ValueError(f"users must be a positive number of people, got {users}")
    if not 0 < active_share <= 1:
        raise ValueError(f"active_share is the share of users active on a day, in (0, 1]; got {active_share}")
    if requests_per_active_user_per_hour <= 0:
        raise ValueError(f"requests_per_active_user_per_hour must be positive, got {requests_per_active_user_per_hour}")
    if peak_factor < 1:
        raise ValueError(f"peak_factor is the peak against the average, at least 1; got {peak_factor}")


def peak_requests_per_s(users: float, active_share: float, requests_per_active_user_per_hour: float,
                        peak_factor: float) -> float:
    """Users x active share x requests per hour / 3600 x peak factor."""
    _check_demand(users, active_share, requests_per_active_user_per_hour, peak_factor)
    return users * active_share * requests_per_active_user_per_hour / SECONDS_PER_HOUR * peak_factor


def max_rate_within_slo(table: pd.DataFrame, ttft_p95_ms: float, tpot_p95_ms: float) -> float:
    """The highest request rate among the load levels of a sweep (``bench.sweep_table``) that
    meet both p95 limits; 0.0 when none does."""
    if ttft_p95_ms <= 0 or tpot_p95_ms <= 0:
        raise ValueError(f"SLO limits must be positive milliseconds, got ttft_p95_ms={ttft_p95_ms}, "
                         f"tpot_p95_ms={tpot_p95_ms}")
    missing = [column for column in SWEEP_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"the table lacks {missing}: pass bench.sweep_table(benchmarks_json)")
    meeting = within_slo(table, ttft_p95_ms=ttft_p95_ms, tpot_p95_ms=tpot_p95_ms)
    return float(meeting.requests_per_s.max()) if len(meeting) else 0.0


def replicas_needed(users: float, active_share: float, requests_per_active_user_per_hour: float,
                    peak_factor: float, rate_per_replica: float) -> int:
    """Replicas that serve the peak: ceil(peak requests/s / requests/s one replica sustains)."""
    if rate_per_replica <= 0:
        raise ValueError(f"rate_per_replica must be positive, got {rate_per_replica}: if it came from "
                         "max_rate_within_slo, no load level met the SLO (relax it, or benchmark on a quieter machine)")
    peak = peak_requests_per_s(users, active_share, requests_per_active_user_per_hour, peak_factor)
    return max(1, math.ceil(round(peak / rate_per_replica, 9)))  # round: 24.000000001 is 24


def replicas_for(assumptions: Assumptions, rate_per_replica: float, employees: int | None = None) -> int:
    """``replicas_needed`` with the values of ``assumptions``."""
    return replicas_needed(assumptions.employees if employees is None else employees, assumptions.active_share,
                           assumptions.requests_per_active_user_per_hour, assumptions.peak_factor, rate_per_replica)


def gpu_strategies(assumptions: Assumptions, rate_per_replica: float, gpus_per_replica: int = 1,
                   colleagues: int = 7) -> pd.DataFrame:
    """GPUs for everyone three ways: Models-as-a-Service, one GPU per employee, and the origin story."""
    maas = replicas_for(assumptions, rate_per_replica) * gpus_per_replica
    rows = [
        {"strategy": "Models-as-a-Service: shared replicas behind a gateway", "gpus": maas,
         "people_served": assumptions.employees},
        {"strategy": "one GPU per employee", "gpus": assumptions.employees * gpus_per_replica,
         "people_served": assumptions.employees},
        {"strategy": f"the origin story: {colleagues} private copies", "gpus": colleagues * gpus_per_replica,
         "people_served": colleagues},
    ]
    table = pd.DataFrame(rows).set_index("strategy")
    table["people_per_gpu"] = table.people_served / table.gpus
    return table


def gpus_by_employees(assumptions: Assumptions, rate_per_replica: float, employees: list[int],
                      gpus_per_replica: int = 1) -> pd.DataFrame:
    """GPUs needed as the company grows: shared replicas against one GPU per employee."""
    rows = [{"employees": n,
             "maas_gpus": replicas_for(assumptions, rate_per_replica, n) * gpus_per_replica,
             "one_gpu_per_employee": n * gpus_per_replica} for n in employees]
    return pd.DataFrame(rows).set_index("employees")
