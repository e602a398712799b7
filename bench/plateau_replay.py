"""Replay the stored benchmark audit logs for MinGain's short step down on the plateau: the
threshold a step down between values >= ``from`` needs when it goes to no less than the
current value ÷ FACTOR (4096 → 1024), where any longer step down there needs ``gain`` (30 %).

In every phase of the mltune regime, the first tick that wrote nothing, whose best-scored value
c is such a short step down from the current value b, with a predicted gain over b in
[THRESHOLD, plateau gain), is a write the agent did not make and would make with
``near_gain`` = THRESHOLD. Each is judged by that round's static figures for the phase
(nearest swept values): useful when c read > 1.1x b, harmful when < 0.9x.

    python bench/plateau_replay.py 0.05 [--factor 4] [--within 2] [--match=-v2 --match=-v3]

``--within S`` keeps ticks at most S seconds into their phase (the policy's ``near_s`` counts
from the tick that saw the workload change, ~0.3 s into a phase).

The scores are the ones the agent logged (a mean over recent ticks where it took one), so
this replays the policy, not a model; the model changed over the stored runs (``--match``
keeps result files whose name contains one of the strings).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

# bench/ is the script's directory, hence first on sys.path: the sibling imports as a module.
from live_replay import RESULTS, Window, nearest, phase_windows, rounds
from mltune.config import defaults
from mltune.policies.limits import gain_ratio


def replay_round(audit: Path, windows: list[Window], threshold: float, factor: float,
                 plateau_from: int, plateau_gain: float, within: float) -> list[tuple]:
    found = []
    done: set[int] = set()  # phases (by index) already judged
    ticks = [json.loads(line) for line in audit.read_text().splitlines()]
    for x in ticks:
        if x.get("kind") != "decision" or x.get("written") or not x.get("scores"):
            continue
        i = next((k for k, w in enumerate(windows) if w[0] <= x["time"] <= w[1]), None)
        if i is None or i in done or x["time"] - windows[i][0] > within:
            continue
        scores = {int(k): v for k, v in x["scores"].items()}
        b, c = x["current"], max(scores, key=lambda v: scores[v])
        if b is None or not (plateau_from <= c < b <= c * factor):
            continue
        gain = gain_ratio(scores, c, b) - 1
        if threshold <= gain < plateau_gain:
            start, _, phase, ratio = windows[i]
            found.append((phase, b, c, gain, nearest(ratio, c) / nearest(ratio, b),
                          x["time"] - start))
            done.add(i)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("threshold", type=float, help="predicted gain a short step needs, e.g. 0.05")
    ap.add_argument("--factor", type=float, default=4.0, help="longest short step (4: 4096 → 1024)")
    ap.add_argument("--within", type=float, default=float("inf"),
                    help="only ticks at most this many seconds into their phase")
    ap.add_argument("--match", action="append", default=[],
                    help="only result files whose name contains this (repeatable)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    plateau = defaults()["drivers"]["readahead"]["policies"]["min_gain_plateau"]
    counts = {"useful": 0, "harmful": 0, "neutral": 0}
    phases = 0
    logs: list[float] = []
    for path, rnd, audit in rounds(args.results):
        if args.match and not any(m in path.name for m in args.match):
            continue
        windows = phase_windows(rnd)
        phases += len(windows)
        for phase, b, c, gain, ratio, at in replay_round(
                audit, windows, args.threshold, args.factor, plateau["from"], plateau["gain"],
                args.within):
            tag = "useful" if ratio > 1.1 else "harmful" if ratio < 0.9 else "neutral"
            counts[tag] += 1
            logs.append(math.log(ratio))
            print(f"{path.stem} r{rnd['round']} {phase}: {b} → {c} predicted {gain:+.1%}, "
                  f"measured {ratio:.2f}x, {at:.1f} s into the phase: {tag}")
    geo = math.exp(sum(logs) / len(logs)) if logs else math.nan
    print(f"near_gain = {args.threshold:g}, factor {args.factor:g}, within {args.within:g} s, "
          f"{phases} phases: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f"; geometric mean of the measured ratios {geo:.3f}")


if __name__ == "__main__":
    main()
