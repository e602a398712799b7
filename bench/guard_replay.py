"""Would another regression-guard tolerance revert more bad changes than good ones?

Every stored outcome the guard measured (``bench/results/*.audit.jsonl``, kept or reverted,
with a ratio), whose write and verdict fell in the same phase, is judged by that round's
static figures for the phase: static(new) ÷ static(old), a value not swept taking its
nearest swept value (in powers of two). For each tolerance it counts the changes the guard
would revert (measured ratio < 1 - tolerance) that the statics call worse (< 0.95), better
(> 1.05), or neither.

    python bench/guard_replay.py [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import NamedTuple

from live_replay import RESULTS, phase_windows, rounds

TOLERANCES = (0.3, 0.2, 0.15, 0.1)


class Judged(NamedTuple):
    measured: float  # the guard's reward ratio
    static: float  # static(new) / static(old), same round and phase
    verdict: str
    phase: str
    old: int
    new: int
    run: str


def nearest(figures: dict[int, float], value: int) -> float:
    if value in figures:
        return figures[value]
    return figures[min(figures, key=lambda k: abs(math.log2(k) - math.log2(value)))]


def judged(results: Path) -> list[Judged]:
    out = []
    for path, rnd, audit in rounds(results):
        windows = phase_windows(rnd)
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        written = {x["id"]: x["time"] for x in lines if x.get("kind") == "decision"}
        for o in lines:
            if o.get("kind") != "outcome" or o.get("ratio") is None:
                continue
            at = [w for w in windows if w[0] <= written.get(o["decision"], o["time"]) <= w[1]]
            if not at or not at[0][0] <= o["time"] <= at[0][1]:
                continue  # judged across a phase change: the statics say nothing of it
            figs = at[0][3]
            out.append(Judged(o["ratio"], nearest(figs, o["new"]) / nearest(figs, o["old"]),
                              o["verdict"], at[0][2], o["old"], o["new"], path.stem))
    return out


def tally(rows: list[Judged], tolerance: float) -> tuple[int, int, int]:
    """(worse, better, neither) among the changes ``tolerance`` would revert."""
    rev = [r for r in rows if r.measured < 1 - tolerance]
    worse = sum(r.static < 0.95 for r in rev)
    better = sum(r.static > 1.05 for r in rev)
    return worse, better, len(rev) - worse - better


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    rows = judged(args.results)
    print(f"{len(rows)} measured outcomes, written and judged within one phase")
    for tol in TOLERANCES:
        worse, better, neither = tally(rows, tol)
        print(f"tolerance {tol}: reverts {worse + better + neither}: the statics call "
              f"{worse} worse, {better} better, {neither} within 5 %")
    print("\noutcomes measured below 0.95:")
    for r in sorted(rows):
        if r.measured < 0.95:
            print(f"  measured {r.measured:.2f}, statics {r.static:.2f}: {r.verdict:<9} "
                  f"{r.phase:<10} {r.old} -> {r.new}  {r.run}")


if __name__ == "__main__":
    main()
