"""Would another regression-guard tolerance revert more bad changes than good ones?

Every stored outcome the guard measured (``bench/results/*.audit.jsonl``, kept or reverted,
with a ratio), whose write and verdict fell in the same phase, is judged by that round's
static figures for the phase: static(new) ÷ static(old), a value not swept taking its
nearest swept value (in powers of two). For each tolerance it counts the changes the guard
would revert (measured ratio < 1 - tolerance) that the statics call worse (< 0.95), better
(> 1.05), or neither.

With ``--recompute`` each ratio is recomputed from the audited features with the reward and
workload signature in this tree (mltune.drivers.readahead), the way mltune.trials.Judge
takes them (settling ticks are no baseline, a revert needs ``min_before`` baseline ticks):
to see what a change of the reward or the guard would have done to the stored outcomes.

    python bench/guard_replay.py [--recompute] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NamedTuple

from live_replay import RESULTS, features, nearest, phase_windows, rounds
from mltune.drivers.readahead import app_kib_s, workload_signature
from mltune.trials import GuardConfig, shifted

TOLERANCES = (0.3, 0.2, 0.15, 0.1)
GUARD = GuardConfig()  # the shipped guard's windows


class Judged(NamedTuple):
    measured: float  # the guard's reward ratio
    static: float  # static(new) / static(old), same round and phase
    verdict: str
    phase: str
    old: int
    new: int
    run: str
    before_ticks: int | None = None  # baseline ticks (recomputed); None: as stored


def settling(ticks: list[dict], j: int, settle_ticks: int) -> bool:
    """Whether ``ticks[j]`` is one of the ``settle_ticks`` after a write of its target
    (a change or a revert): the judge takes no baseline from it."""
    name = ticks[j].get("target")
    mine = [t for t in ticks[max(0, j - 4 * settle_ticks - 4):j] if t.get("target") == name]
    return any(t.get("written") is not None for t in mine[-settle_ticks:])


def baseline(ticks: list[dict], i: int, old: int, cfg: GuardConfig = GUARD) -> list[float]:
    """The rewards the judge takes as the baseline of the change written at ``ticks[i]``:
    the last ``window_ticks`` at ``old`` and the writing tick's workload, settling ticks
    left out."""
    sig = workload_signature(features(ticks[i]))
    start = max(0, i + 1 - 4 * cfg.window_ticks)
    hist = [t for j, t in enumerate(ticks[start:i + 1], start)
            if not settling(ticks, j, cfg.settle_ticks)]
    before = [app_kib_s(features(t)) for t in hist if t.get("current") == old
              and not shifted(workload_signature(features(t)), sig, cfg.workload_shift)]
    return [r for r in before if r is not None][-cfg.window_ticks:]


def recomputed(ticks: list[dict], i: int, old: int, verdict_at: float,
               cfg: GuardConfig = GUARD) -> float | None:
    """The ratio of the change written at ``ticks[i]``, from the shipped reward: before, the
    last ``window_ticks`` rewards at ``old`` and at the writing tick's workload among the
    ticks the judge remembers; after, the first ``window_ticks`` after the settle ticks, up
    to the verdict. None where either side has no reward. A tick settling after a write
    is no baseline (mltune.trials.Judge.observe)."""
    before = baseline(ticks, i, old, cfg)
    # The verdict's outcome line is written during the tick that measured last, a few ms
    # before that tick's decision line: that tick counts.
    after = [app_kib_s(features(t)) for t in ticks[i + 1 + cfg.settle_ticks:]
             if t["time"] <= verdict_at + 0.05]
    after = [r for r in after if r is not None][:cfg.window_ticks]
    if not before or not after or sum(before) <= 0:
        return None
    return (sum(after) / len(after)) / (sum(before) / len(before))


def judged(results: Path, recompute: bool = False) -> list[Judged]:
    out = []
    for path, rnd, audit in rounds(results):
        windows = phase_windows(rnd)
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        ticks = [x for x in lines if x.get("kind") == "decision"]
        index = {x["id"]: i for i, x in enumerate(ticks)}
        for o in lines:
            if o.get("kind") != "outcome" or o.get("ratio") is None:
                continue
            i = index.get(o["decision"])
            written = o["time"] if i is None else ticks[i]["time"]
            at = [w for w in windows if w[0] <= written <= w[1]]
            if not at or not at[0][0] <= o["time"] <= at[0][1]:
                continue  # judged across a phase change: the statics say nothing of it
            ratio, n = o["ratio"], None
            if recompute:
                ratio = None if i is None else recomputed(ticks, i, o["old"], o["time"])
                if ratio is None:
                    continue
                n = len(baseline(ticks, i, o["old"]))
            figs = at[0][3]
            out.append(Judged(ratio, nearest(figs, o["new"]) / nearest(figs, o["old"]),
                              o["verdict"], at[0][2], o["old"], o["new"], path.stem, n))
    return out


def tally(rows: list[Judged], tolerance: float) -> tuple[int, int, int]:
    """(worse, better, neither) among the changes ``tolerance`` would revert."""
    rev = [r for r in rows if r.measured < 1 - tolerance
           and (r.before_ticks is None or r.before_ticks >= GUARD.min_before)]
    worse = sum(r.static < 0.95 for r in rev)
    better = sum(r.static > 1.05 for r in rev)
    return worse, better, len(rev) - worse - better


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--recompute", action="store_true",
                    help="recompute each ratio with the reward in this tree")
    args = ap.parse_args()
    rows = judged(args.results, args.recompute)
    print(f"{len(rows)} measured outcomes, written and judged within one phase")
    for tol in TOLERANCES:
        worse, better, neither = tally(rows, tol)
        print(f"tolerance {tol}: reverts {worse + better + neither}: the statics call "
              f"{worse} worse, {better} better, {neither} within 5 %")
    print("\noutcomes measured below 0.95:")
    for r in sorted(rows):
        if r.measured < 0.95:
            on = "" if r.before_ticks is None else f" on {r.before_ticks} tick(s)"
            print(f"  measured {r.measured:.2f}{on}, statics {r.static:.2f}: {r.verdict:<9} "
                  f"{r.phase:<10} {r.old} -> {r.new}  {r.run}")


if __name__ == "__main__":
    main()
