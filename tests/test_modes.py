"""Mode transitions of one target (ML-LIB RFC modes)."""

from __future__ import annotations

from mltune.modes import (
    COLLABORATION,
    EMERGENCY,
    LEARNING,
    RECOMMENDATION,
    ModeConfig,
    TargetMode,
)
from mltune.trials import Outcome

CFG = ModeConfig(start=LEARNING, promote_after=2, max_prediction_error=4.0,
                 emergency_after_errors=3, calm_ticks=2)


def gain(ratio: float = 1.5, predicted: float | None = 1.4, before_ticks: int = 3) -> Outcome:
    return Outcome("d", 4, 1024, "kept", "", 100.0, 100 * ratio, ratio, predicted,
                   before_ticks)


def test_start_mode_comes_from_the_config_and_advise_starts_collaborating() -> None:
    assert TargetMode(CFG).mode == LEARNING
    assert TargetMode(ModeConfig(start="advise")).mode == COLLABORATION


def test_promotion_after_n_measured_gains_in_a_row_up_to_recommendation() -> None:
    m = TargetMode(CFG)
    assert m.outcome(gain()) is None
    assert m.outcome(gain()) == "learning → collaboration: 2 changes in a row measured as gains"
    m.outcome(gain())
    m.outcome(gain())
    assert m.mode == RECOMMENDATION
    m.outcome(gain())
    assert m.outcome(gain()) is None and m.mode == RECOMMENDATION  # top of the ladder


def test_inconclusive_outcomes_neither_promote_nor_demote() -> None:
    m = TargetMode(CFG)
    m.outcome(gain())
    m.outcome(Outcome("d", 4, 1024, "inconclusive", "workload changed"))
    assert m.outcome(gain()) is not None  # the streak of gains was not broken


def revert(old: int = 4, new: int = 1024) -> Outcome:
    return Outcome("d", old, new, "reverted", "reward 0.5x", 100, 50, 0.5, 2.0)


def test_two_reverts_in_a_row_demote_one_step_and_one_breaks_the_streak() -> None:
    m = TargetMode(ModeConfig(start=RECOMMENDATION, promote_after=2, demote_after=2))
    m.outcome(gain())
    assert m.outcome(revert()) is None  # the guard did its job: the value is barred
    assert (m.mode, m.wins) == (RECOMMENDATION, 0)
    assert m.outcome(revert(4, 512)) == (
        "recommendation → collaboration: 2 reverts in a row, the last change 4 → 512 "
        "reverted (reward 0.5x)")
    assert (m.wins, m.losses) == (0, 0)


def test_a_measured_gain_between_two_reverts_keeps_the_mode() -> None:
    m = TargetMode(ModeConfig(start=COLLABORATION, promote_after=3, demote_after=2))
    m.outcome(revert())
    m.outcome(gain())
    assert m.outcome(revert()) is None and m.mode == COLLABORATION
    m.outcome(Outcome("d", 4, 1024, "inconclusive", "workload changed"))  # not a gain
    assert m.outcome(revert()) == (
        "collaboration → learning: 2 reverts in a row, the last change 4 → 1024 reverted "
        "(reward 0.5x)")


def test_demote_after_one_demotes_on_every_revert() -> None:
    m = TargetMode(ModeConfig(start=RECOMMENDATION, demote_after=1))
    assert m.outcome(revert()) == (
        "recommendation → collaboration: change 4 → 1024 reverted (reward 0.5x)")


def test_a_prediction_off_by_more_than_the_limit_demotes_even_if_kept() -> None:
    m = TargetMode(ModeConfig(start=COLLABORATION, max_prediction_error=4.0))
    assert m.outcome(gain(ratio=1.0, predicted=5.0)) == (
        "collaboration → learning: measured 1.00x, predicted 5.00x")
    assert m.outcome(gain(ratio=0.9, predicted=5.0)) is None  # already at the bottom
    assert m.mode == LEARNING


def test_a_prediction_error_on_a_baseline_too_thin_to_revert_on_does_not_demote() -> None:
    # A phase's first write: one tick of the new workload at the old value behind it.
    m = TargetMode(ModeConfig(start=COLLABORATION, max_prediction_error=4.0))
    assert m.outcome(gain(ratio=0.89, predicted=8.98, before_ticks=1), min_before=2) is None
    assert m.mode == COLLABORATION
    assert m.outcome(gain(ratio=0.89, predicted=8.98, before_ticks=2), min_before=2) == (
        "collaboration → learning: measured 0.89x, predicted 8.98x")


def test_a_gain_larger_than_predicted_is_not_a_prediction_error() -> None:
    m = TargetMode(ModeConfig(start=COLLABORATION, promote_after=1))
    assert m.outcome(gain(ratio=22.75, predicted=6.67)) == (
        "collaboration → recommendation: 1 changes in a row measured as gains")


def test_repeated_write_errors_enter_emergency_and_resume_lifts_it_into_learning() -> None:
    m = TargetMode(ModeConfig(start=RECOMMENDATION, emergency_after_errors=3))
    assert m.write_failed("EINVAL") is None
    m.write_ok()  # a success in between resets the count
    assert m.write_failed("EINVAL") is None and m.write_failed("EINVAL") is None
    assert m.write_failed("EINVAL") == (
        "recommendation → emergency: 3 failed writes in a row: EINVAL")
    assert m.outcome(gain()) is None and m.mode == EMERGENCY  # no learning while hands off
    assert m.lift() == "emergency → learning: resumed by request"


def test_extreme_pressure_is_an_emergency_lifted_after_calm_ticks() -> None:
    m = TargetMode(CFG)
    assert m.pressure({"memory_full_avg10": 95.0}) == (
        "learning → emergency: extreme pressure: memory_full_avg10 95% >= 90%")
    assert m.lift() is None  # not an error emergency: resume does not lift it
    assert m.pressure({"memory_full_avg10": 10.0}) is None
    assert m.pressure({"memory_full_avg10": 95.0}) is None  # calm count starts again
    assert m.pressure({"memory_full_avg10": 10.0}) is None
    assert m.pressure({"memory_full_avg10": 10.0}) == (
        "emergency → learning: pressure calm for 2 ticks")


def test_unknown_pressure_and_io_pressure_under_100_do_not_trigger() -> None:
    m = TargetMode(CFG)
    assert m.pressure({"memory_full_avg10": float("nan"), "io_full_avg10": 99.0}) is None
    assert m.mode == LEARNING


def test_a_model_emergency_is_not_lifted_by_calm_or_resume() -> None:
    m = TargetMode(CFG)
    m.emergency("model", "no valid model")
    for _ in range(5):
        m.pressure({"memory_full_avg10": 0.0})
    assert m.lift() is None and m.mode == EMERGENCY
