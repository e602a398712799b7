"""bench/further_replay.py on a synthetic round: which second steps a lower bar would let
through, judged by the round's static figures."""

from __future__ import annotations

import json
from pathlib import Path

from .test_bench_aggregate import BENCH, _load

_load("live_replay", BENCH / "live_replay.py")  # its sibling import, as the script sees it
replay = _load("further_replay", BENCH / "further_replay.py")

# One phase of mmap random reads, 0-10 s: static 4 is the best, 16 reads 0.75 of it.
WINDOWS = [(0.0, 10.0, "mmap-rand", {4: 1.0, 16: 0.75, 2048: 0.04})]


def decision(t: float, current: int, chosen: int, written: bool,
             scores: dict[int, float]) -> str:
    return json.dumps({"kind": "decision", "time": t, "current": current, "chosen": chosen,
                       "written": written, "scores": {str(k): v for k, v in scores.items()}})


def test_a_step_beyond_the_last_write_under_min_gain_is_found_and_judged(
        tmp_path: Path) -> None:
    audit = tmp_path / "r1.audit.jsonl"
    audit.write_text("\n".join([
        decision(0.5, 2048, 16, True, {4: 0.8, 16: 0.85, 2048: 0.05}),
        decision(1.5, 16, 16, False, {4: 0.92, 16: 0.90, 2048: 0.05}),  # +2 %: under 3 %
        decision(2.5, 16, 16, False, {4: 0.95, 16: 0.90, 2048: 0.05}),  # +5.6 %: found
        decision(3.5, 16, 16, False, {4: 0.96, 16: 0.90, 2048: 0.05}),  # judged once only
    ]) + "\n")
    found = replay.replay_round(audit, WINDOWS, 0.03, 0.10, 5.0)
    assert [(f[0], f[1], f[2], f[3], round(f[5], 2), f[6]) for f in found] == \
        [("mmap-rand", 2048, 16, 4, 1.33, 2.5)]


def test_a_step_back_is_not_a_further_step(tmp_path: Path) -> None:
    audit = tmp_path / "r1.audit.jsonl"
    audit.write_text("\n".join([
        decision(0.5, 4, 16, True, {4: 0.8, 16: 0.85, 2048: 0.05}),  # up from 4
        decision(1.5, 16, 16, False, {4: 0.95, 16: 0.90, 2048: 0.05}),  # 4: back, +5.6 %
    ]) + "\n")
    assert replay.replay_round(audit, WINDOWS, 0.0, 0.10, 5.0) == []


def test_a_step_further_after_the_time_limit_is_not_counted(tmp_path: Path) -> None:
    audit = tmp_path / "r1.audit.jsonl"
    audit.write_text("\n".join([
        decision(0.5, 16, 2048, True, {4: 0.1, 16: 0.3, 2048: 0.9}),
        decision(6.0, 2048, 2048, False, {4: 0.05, 16: 0.3, 2048: 0.90, 4096: 0.95}),
    ]) + "\n")
    windows = [(0.0, 10.0, "seq", {4: 0.1, 16: 0.3, 2048: 0.8, 4096: 1.0})]
    assert replay.replay_round(audit, windows, 0.0, 0.10, 5.0) == []
    assert [f[3] for f in replay.replay_round(audit, windows, 0.0, 0.10, 6.0)] == [4096]
