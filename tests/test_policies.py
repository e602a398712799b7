"""Safety policies: range clamp, minimum predicted gain (hysteresis), cooldown."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from mltune.policies.base import Proposal, Verdict
from mltune.policies.limits import AllowedRange, Cooldown, MinGain

SCORES = {4: 0.30, 64: 0.60, 128: 0.62, 1024: 0.95, 4096: 0.90}


def proposal(current: int, value: int, scores: Mapping[int, float] = SCORES,
             now: float = 100.0, last_change: float | None = None) -> Proposal:
    return Proposal("readahead", "vda", current, value, scores, now, last_change)


# -- AllowedRange ----------------------------------------------------------------------


def test_range_clamps_a_value_below_the_minimum() -> None:
    v = AllowedRange(16, 1024).check(proposal(128, 4))
    assert v == Verdict("range", "clamp", 16, "4 below minimum 16")


def test_range_clamps_a_value_above_the_maximum() -> None:
    v = AllowedRange(16, 1024).check(proposal(128, 4096))
    assert (v.action, v.value) == ("clamp", 1024)
    assert "above maximum 1024" in v.reason


@pytest.mark.parametrize("value", [16, 256, 1024])
def test_range_allows_values_inside_including_the_bounds(value: int) -> None:
    v = AllowedRange(16, 1024).check(proposal(128, value))
    assert (v.action, v.value) == ("allow", value)


# -- MinGain ---------------------------------------------------------------------------


def test_min_gain_allows_a_predicted_gain_above_the_threshold() -> None:
    v = MinGain(0.05).check(proposal(64, 1024))
    assert (v.action, v.value) == ("allow", 1024)
    assert v.reason == "predicted gain +0.350"


def test_min_gain_denies_a_gain_within_noise_and_keeps_current() -> None:
    v = MinGain(0.05).check(proposal(64, 128))  # +0.02
    assert (v.action, v.value) == ("deny", 64)
    assert v.reason == "predicted gain +0.020 < 0.050"


def test_min_gain_denies_a_predicted_loss() -> None:
    assert MinGain(0.0).check(proposal(1024, 4)).action == "deny"


def test_min_gain_has_nothing_to_judge_when_nothing_changes() -> None:
    v = MinGain(0.5).check(proposal(64, 64))
    assert (v.action, v.value, v.reason) == ("allow", 64, "no change proposed")


def test_current_value_set_by_hand_outside_candidates_is_judged_by_nearest() -> None:
    # vda boots with read_ahead_kb 8192, not a candidate: 4096 stands in for it.
    assert MinGain(0.05).check(proposal(8192, 1024)).action == "deny"  # 0.95 vs 0.90
    assert MinGain(0.01).check(proposal(8192, 1024)).action == "allow"
    # 100 set by hand: nearest candidate 128 (0.62); 1024 gains 0.33.
    assert MinGain(0.05).check(proposal(100, 1024)).action == "allow"


def test_value_clamped_between_candidates_is_judged_by_nearest() -> None:
    # range max 1000: the range policy turns 1024 into 1000, which the model never scored.
    v = MinGain(0.05).check(proposal(64, 1000))
    assert (v.action, v.value) == ("allow", 1000)
    assert v.reason == "predicted gain +0.350"


# -- Cooldown --------------------------------------------------------------------------


def test_cooldown_allows_the_first_change() -> None:
    v = Cooldown(10).check(proposal(64, 1024, last_change=None))
    assert (v.action, v.value) == ("allow", 1024)


def test_cooldown_denies_a_change_too_soon_after_the_last() -> None:
    v = Cooldown(10).check(proposal(64, 1024, now=103.0, last_change=100.0))
    assert (v.action, v.value) == ("deny", 64)
    assert v.reason == "last change 3.0s ago < 10s"


def test_cooldown_allows_once_the_time_has_passed() -> None:
    v = Cooldown(10).check(proposal(64, 1024, now=112.5, last_change=100.0))
    assert (v.action, v.value) == ("allow", 1024)


def test_cooldown_never_blocks_keeping_the_current_value() -> None:
    assert Cooldown(10).check(proposal(64, 64, now=100.5, last_change=100.0)).action == "allow"


def test_verdict_json_is_what_the_audit_log_shows() -> None:
    v = Cooldown(10).check(proposal(64, 1024, now=103.0, last_change=100.0))
    assert v.to_json() == {"policy": "cooldown", "action": "deny", "value": 64,
                           "reason": "last change 3.0s ago < 10s"}
