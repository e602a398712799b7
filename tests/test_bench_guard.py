"""bench/guard_replay.py: which changes a tolerance would revert, judged by the statics."""

from __future__ import annotations

import math

import pytest

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


def _tick(t: float, current: int, rate: float, log_gap: float, seq: float = 1.0) -> dict:
    feats = {"tr_rate_log2": math.log2(rate + 1), "tr_fault_frac": 1.0, "tr_seq_frac": seq,
             "tr_near_frac": 0.0, "tr_log_gap": log_gap, "tr_req_pages": None}
    return {"time": t, "current": current, "features": feats}


def test_recompute_takes_the_judges_windows_with_the_shipped_reward() -> None:
    # mmap-seq at 256 then 1024 (shuffled mix, -v17): faults 64 pages apart, then 242 and
    # 3.2x rarer. The stored ratio, one page per fault, was 0.55x.
    ticks = [_tick(0.0, 4, 20000, 18.0, seq=0.0),  # mmap random reads: another workload
             *(_tick(1.0 + k, 256, 4800, 6.0) for k in range(4)),  # the last one writes
             _tick(5.0, 1024, 2000, 7.0),  # the settle tick: not judged
             *(_tick(6.0 + k, 1024, 1550, 7.92) for k in range(4))]
    ratio = guard.recomputed(ticks, 4, 256, verdict_at=8.0)
    assert ratio == pytest.approx(1550 * 2 ** 7.92 / (4800 * 64))
    assert guard.recomputed(ticks, 4, 64, verdict_at=8.0) is None  # nothing at 64 before
    assert guard.recomputed(ticks, 4, 256, verdict_at=5.5) is None  # verdict before any tick


def test_recompute_takes_no_baseline_from_a_tick_settling_after_a_write() -> None:
    # 2560 -> 64 at the phase's first tick, 64 -> 16 at the next: the only tick at 64 is
    # the one settling after the first write, so the second change has no baseline.
    first = {**_tick(0.0, 2560, 100, 0.0, seq=0.0), "written": "64", "target": "loop0"}
    settle = {**_tick(0.5, 64, 20000, 0.0, seq=0.0), "written": "16", "target": "loop0"}
    after = [{**_tick(1.0 + k, 16, 9000, 0.0, seq=0.0), "target": "loop0"} for k in range(4)]
    ticks = [first, settle, *after]
    assert guard.settling(ticks, 1, 1) and not guard.settling(ticks, 3, 1)
    assert guard.recomputed(ticks, 1, 64, verdict_at=4.0) is None
