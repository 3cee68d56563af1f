from pathlib import Path

import pytest

from helpers import bench, capacity, company, synthetic

SWEEP = Path(__file__).parent.parent / "data" / "guidellm_sweep_benchmarks.json"
OLD_DEMAND = capacity.Assumptions(employees=19_000, active_share=0.25, requests_per_active_user_per_hour=6,
                                  peak_factor=3)  # 23.75 requests/s at the peak: round numbers for the arithmetic


@pytest.fixture(scope="module")
def table():
    return bench.sweep_table(SWEEP)


def test_max_rate_within_slo_on_a_real_guidellm_run(table):
    # Levels (requests/s, p95 TTFT ms, p95 TPOT ms): synchronous (6.0, 168, 5.3), constant
    # (6.875, 1157, 36.2), constant (8.5, 516, 16.9), throughput (9.0, 1174, 41.4).
    assert capacity.max_rate_within_slo(table, ttft_p95_ms=500, tpot_p95_ms=25) == pytest.approx(6.0)
    assert capacity.max_rate_within_slo(table, ttft_p95_ms=600, tpot_p95_ms=25) == pytest.approx(8.5)
    assert capacity.max_rate_within_slo(table, ttft_p95_ms=2000, tpot_p95_ms=50) == pytest.approx(9.0)
    assert capacity.max_rate_within_slo(table, ttft_p95_ms=1, tpot_p95_ms=25) == 0.0


def test_max_rate_within_slo_rejects_bad_limits_and_tables(table):
    with pytest.raises(ValueError, match="SLO limits must be positive"):
        capacity.max_rate_within_slo(table, ttft_p95_ms=0, tpot_p95_ms=25)
    with pytest.raises(ValueError, match="lacks \\['tpot_p95_ms'\\].*sweep_table"):
        capacity.max_rate_within_slo(table.drop(columns="tpot_p95_ms"), 500, 25)


def test_replicas_needed_is_the_ceiling_of_peak_over_rate():
    # 19,000 x 0.25 x 6 / 3600 x 3 = 23.75 requests/s at the peak
    assert capacity.peak_requests_per_s(19_000, 0.25, 6, 3) == pytest.approx(23.75)
    assert capacity.replicas_needed(19_000, 0.25, 6, 3, rate_per_replica=6.0) == 4
    assert capacity.replicas_needed(19_000, 0.25, 6, 3, rate_per_replica=23.75) == 1
    assert capacity.replicas_needed(19_000, 0.25, 6, 3, rate_per_replica=23.7) == 2
    assert capacity.replicas_needed(7, 1.0, 6, 1, rate_per_replica=10) == 1  # never zero
    # 3600 users x 1 request/hour = 1 request/s exactly: no rounding surprise
    assert capacity.replicas_needed(3600 * 3, 1 / 3, 1, 2, rate_per_replica=0.5) == 4


@pytest.mark.parametrize(("args", "message"), [
    ((0, 0.25, 6, 3, 6.0), "users must be a positive"),
    ((19_000, 0, 6, 3, 6.0), "active_share"),
    ((19_000, 1.5, 6, 3, 6.0), "active_share"),
    ((19_000, 0.25, 0, 3, 6.0), "requests_per_active_user_per_hour must be positive"),
    ((19_000, 0.25, 6, 0.5, 6.0), "peak_factor"),
    ((19_000, 0.25, 6, 3, 0.0), "rate_per_replica must be positive.*no load level met the SLO"),
    ((19_000, 0.25, 6, 3, -1.0), "rate_per_replica must be positive"),
])
def test_replicas_needed_rejects_impossible_inputs(args, message):
    with pytest.raises(ValueError, match=message):
        capacity.replicas_needed(*args)


def test_assumptions_default_to_the_19000_employee_company_and_are_validated():
    assumptions = capacity.Assumptions()
    assert assumptions == capacity.Assumptions.from_profile(company.CompanyProfile())  # one definition of the demand
    assert assumptions.employees == 19_000 and assumptions.peak_requests_per_s() == pytest.approx(
        company.peak_requests_per_s())
    table = assumptions.table()
    assert list(table.index) == ["employees", "active_share", "requests_per_active_user_per_hour", "peak_factor"]
    assert table.meaning.str.len().min() > 20  # each assumption says what it means
    with pytest.raises(ValueError, match="users must be a positive"):
        capacity.Assumptions(employees=0)


def test_gpu_strategies_compare_maas_with_a_gpu_per_employee():
    strategies = capacity.gpu_strategies(OLD_DEMAND, rate_per_replica=6.0)
    assert strategies.gpus.tolist() == [4, 19_000, 7]
    assert strategies.people_served.tolist() == [19_000, 19_000, 7]
    assert strategies.people_per_gpu.iloc[0] == 4750
    doubled = capacity.gpu_strategies(OLD_DEMAND, rate_per_replica=6.0, gpus_per_replica=2)
    assert doubled.gpus.iloc[0] == 8


def test_gpus_by_employees_grows_far_slower_than_one_each():
    growth = capacity.gpus_by_employees(OLD_DEMAND, 6.0, [7, 1_000, 19_000])
    assert growth.one_gpu_per_employee.tolist() == [7, 1_000, 19_000]
    assert growth.maas_gpus.tolist() == [1, 1, 4]


def test_the_lab3_check_accepts_the_right_answer_and_explains_wrong_ones():
    from helpers.checks import check_replicas_for_peak
    from helpers.errors import CheckFailed

    assumptions = OLD_DEMAND  # peak factor 5: 39.58 requests/s, 7 replicas at 6.0 each
    assert check_replicas_for_peak(7, assumptions, 5, 6.0) is True
    with pytest.raises(CheckFailed, match="expected 7"):
        check_replicas_for_peak(4, assumptions, 5, 6.0)  # the old peak factor
    with pytest.raises(CheckFailed, match="math.ceil"):
        check_replicas_for_peak(6.6, assumptions, 5, 6.0)
    with pytest.raises(CheckFailed, match="one per employee"):
        check_replicas_for_peak(19_000, assumptions, 5, 6.0)
    with pytest.raises(CheckFailed, match="monday_replicas is still None"):
        check_replicas_for_peak(None, assumptions, 5, 6.0, name="monday_replicas")


def test_the_company_profile_peaks_at_nine_and_lab6s_month_is_the_demand_lab3_sizes_for():
    assert company.peak_hour() == 9  # the 09:00 spike of the talk's dashboard
    profile = company.CompanyProfile(employees=4_000, teams=8)
    month = synthetic.synthetic_month(profile, days=28, seed=3)
    assert 10_000_000 < company.expected_requests() < 11_000_000  # the default month: about 10 M requests
    assert abs(len(month) / company.expected_requests(profile, 28) - 1) < 0.05
    per_hour = month.groupby(month["ts"].dt.floor("h")).size()
    busiest = per_hour.idxmax()
    assert busiest.hour == 9 and busiest.dayofweek in (1, 2)  # 09:00 on a Tuesday or Wednesday
    planned = capacity.Assumptions.from_profile(profile).peak_requests_per_s() * 3600
    assert abs(per_hour.max() / planned - 1) < 0.1  # the month's busiest hour is the hour Lab 3 sizes for
