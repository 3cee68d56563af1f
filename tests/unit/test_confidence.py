"""Confidence intervals for Lab 2's accuracies and recoveries, on results whose answer is known."""
import pytest

from helpers import confidence


def test_the_wilson_interval_matches_the_textbook_values():
    interval = confidence.accuracy_interval([1] * 96 + [0] * 4)  # 96 of 100
    assert interval.value == 0.96
    assert interval.low == pytest.approx(0.9016, abs=1e-4) and interval.high == pytest.approx(0.9843, abs=1e-4)
    assert confidence.accuracy_interval([1] * 10).high == pytest.approx(1.0)  # never past 100 %


def test_one_more_right_answer_in_200_is_within_noise():
    baseline = [1] * 170 + [0] * 30
    quantized = [0] * 5 + [1] * 165 + [1] * 6 + [0] * 24  # 100.6 %: 5 of the baseline's answers lost, 6 gained
    recovery = confidence.recovery_interval(baseline, quantized)
    assert recovery.value == pytest.approx(171 / 170)
    assert recovery.low < 1.0 < recovery.high and confidence.verdict(recovery) == "within noise"


def test_a_real_loss_is_called_a_loss():
    baseline = [1] * 190 + [0] * 10
    quantized = [1] * 120 + [0] * 80  # the 2-bit kind of loss
    recovery = confidence.recovery_interval(baseline, quantized)
    assert recovery.high < 1.0 and confidence.verdict(recovery) == "a measured loss"


def test_pairing_narrows_the_interval_when_both_models_miss_the_same_questions():
    baseline = [1] * 150 + [0] * 50
    same_misses = baseline[:-2] + [0, 0]  # misses the baseline's misses, and two more
    paired = confidence.recovery_interval(baseline, same_misses)
    shuffled = confidence.recovery_interval(baseline, same_misses[::-1])  # the same accuracy, unrelated misses
    assert paired.value == shuffled.value
    assert paired.high - paired.low < (shuffled.high - shuffled.low) / 2


def test_results_of_different_questions_are_refused():
    with pytest.raises(ValueError, match="same questions"):
        confidence.recovery_interval([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="undefined"):
        confidence.recovery_interval([0, 0], [1, 0])


def test_the_recovery_table_gives_each_model_its_interval_and_verdict():
    table = confidence.recovery_table({"baseline": [1] * 90 + [0] * 10, "lossy": [1] * 40 + [0] * 60,
                                       "same": [0] + [1] * 89 + [1] + [0] * 9})
    assert table.loc["baseline", "verdict"] == "within noise" and table.loc["baseline", "recovery"] == 1.0
    assert table.loc["lossy", "verdict"] == "a measured loss" and table.loc["lossy", "recovery_high"] < 1.0
    assert table.loc["same", "verdict"] == "within noise"
    assert (table.recovery_low <= table.recovery).all() and (table.recovery <= table.recovery_high).all()
