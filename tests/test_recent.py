"""The model's scores averaged over the last ticks of one workload (mltune.recent)."""

from __future__ import annotations

from mltune.recent import RecentScores

STREAM = {256: 0.80, 2048: 0.96, 4096: 0.98}
ODD = {256: 0.75, 2048: 0.67, 4096: 0.69}  # small disk requests this second: 256 first


def test_one_odd_tick_at_a_steady_workload_does_not_move_the_mean() -> None:
    r = RecentScores()
    assert r.mean("a", 4096, STREAM, moved=False) == (STREAM, 1)  # first tick here
    assert r.mean("a", 4096, STREAM, moved=False) == (STREAM, 1)  # nothing to average yet
    got, n = r.mean("a", 4096, ODD, moved=False)
    assert n == 2 and max(got, key=got.__getitem__) == 4096
    assert got[256] == (0.80 + 0.75) / 2


def test_only_the_last_ticks_are_averaged() -> None:
    r = RecentScores(ticks=2)
    for s in (STREAM, STREAM, STREAM):
        r.mean("a", 4096, s, moved=False)
    got, n = r.mean("a", 4096, ODD, moved=False)
    assert n == 2 and got[4096] == (0.98 + 0.69) / 2


def test_a_moved_workload_or_a_new_value_starts_over_with_the_tick_alone() -> None:
    r = RecentScores()
    for _ in range(3):
        r.mean("a", 4096, STREAM, moved=False)
    assert r.mean("a", 4096, ODD, moved=True) == (ODD, 1)
    assert r.mean("a", 4096, STREAM, moved=False) == (STREAM, 1)  # the moved tick left out
    for _ in range(2):
        r.mean("a", 4096, STREAM, moved=False)
    assert r.mean("a", 256, ODD, moved=False) == (ODD, 1)  # a write happened: a transition


def test_a_large_predicted_gain_is_acted_on_at_once() -> None:
    r = RecentScores(act_now=2.0)
    rand = {4: 0.95, 16: 0.80, 2048: 0.05}
    for _ in range(3):
        r.mean("a", 2048, STREAM, moved=False)
    assert r.mean("a", 2048, rand, moved=False) == (rand, 1)  # 19x: not averaged away


def test_targets_are_kept_apart_and_a_forgotten_one_starts_over() -> None:
    r = RecentScores()
    for _ in range(2):
        r.mean("a", 4096, STREAM, moved=False)
    assert r.mean("b", 4096, ODD, moved=False) == (ODD, 1)
    r.forget("a")
    assert r.mean("a", 4096, ODD, moved=False) == (ODD, 1)


def test_a_candidate_new_to_this_tick_is_scored_by_this_tick_alone() -> None:
    r = RecentScores()
    r.mean("a", 4096, STREAM, moved=False)
    r.mean("a", 4096, STREAM, moved=False)
    got, n = r.mean("a", 4096, {**STREAM, 512: 0.90}, moved=False)
    assert n == 2 and got[512] == 0.90
