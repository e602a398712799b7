"""bench/guard_replay.py: which changes a tolerance would revert, judged by the statics."""

from __future__ import annotations

from .test_bench_aggregate import BENCH, _load

_load("live_replay", BENCH / "live_replay.py")  # its sibling import, as the script sees it
guard = _load("guard_replay", BENCH / "guard_replay.py")


def test_a_value_not_swept_takes_its_nearest_in_powers_of_two() -> None:
    figs = {4: 1.0, 512: 2.0, 2048: 3.0}
    assert guard.nearest(figs, 2560) == 3.0 and guard.nearest(figs, 256) == 2.0
    assert guard.nearest(figs, 16) == 1.0  # 2 steps from 4, 5 from 512


def test_tally_counts_what_each_tolerance_reverts_by_the_statics_verdict() -> None:
    rows = [guard.Judged(0.5, 0.8, "reverted", "seq", 4096, 1024, "r"),  # worse: reverted
            guard.Judged(0.84, 1.03, "kept", "multi-seq", 4096, 256, "r"),  # neither
            guard.Judged(0.77, 1.13, "kept", "seq", 256, 2048, "r"),  # better
            guard.Judged(1.2, 1.5, "kept", "seq", 4, 2048, "r")]  # a gain: never reverted
    assert guard.tally(rows, 0.3) == (1, 0, 0)
    assert guard.tally(rows, 0.2) == (1, 1, 0)
    assert guard.tally(rows, 0.15) == (1, 1, 1)
