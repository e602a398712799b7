"""Replay the stored benchmark audit logs for MinGain's ``further``: the threshold a step needs
when it takes the last write further the same way (2560 → 16 written, then 16 → 4).

For every write a → b of the mltune regime, the ticks after it at b, in the same phase and
within --within seconds, are searched for the first whose best-scored value c lies beyond b
(same direction as a → b) with a predicted gain over b in [THRESHOLD, min_gain): a write the
agent did not make and would make with ``further`` = THRESHOLD. Each is judged by that
round's static figures for the phase: useful when c read > 1.1x b, harmful when < 0.9x.

    python bench/further_replay.py 0.03 [--within 5] [--results DIR]

The scores are the ones the agent logged (a mean over recent ticks where it took one), so
this replays the policy, not a model: use bench/live_replay.py for models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# bench/ is the script's directory, hence first on sys.path: the sibling imports as a module.
from live_replay import RESULTS, Window, phase_windows, rounds
from mltune.config import defaults
from mltune.policies.limits import gain_ratio


def replay_round(audit: Path, windows: list[Window], threshold: float, min_gain: float,
                 within: float) -> list[tuple]:
    def phase_of(t: float) -> tuple | None:
        return next((w for w in windows if w[0] <= t <= w[1]), None)

    found = []
    last = None  # (a, b, time, phase window) of the last write; None once judged
    for line in audit.read_text().splitlines():
        x = json.loads(line)
        if x.get("kind") != "decision":
            continue
        w = phase_of(x["time"])
        if x.get("written"):
            last = (x["current"], x["chosen"], x["time"], w)
            continue
        if last is None or not x.get("scores") or w is None or w is not last[3]:
            continue
        a, b, t0, _ = last
        if x["time"] - t0 > within or x["current"] != b:
            continue
        scores = {int(k): v for k, v in x["scores"].items()}
        c = max(scores, key=lambda v: scores[v])
        gain = gain_ratio(scores, c, b) - 1
        if (c - b) * (b - a) <= 0 or not threshold <= gain < min_gain:
            continue
        ratio = w[3]
        if c in ratio and b in ratio:
            found.append((w[2], a, b, c, gain, ratio[c] / ratio[b], x["time"] - w[0]))
            last = None
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("threshold", type=float, help="predicted gain a further step needs, e.g. 0.03")
    ap.add_argument("--within", type=float, default=5.0, help="seconds after the write")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    min_gain = defaults()["drivers"]["readahead"]["policies"]["min_gain"]
    counts = {"useful": 0, "harmful": 0, "neutral": 0}
    for path, rnd, audit in rounds(args.results):
        for phase, a, b, c, gain, ratio, at in replay_round(
                audit, phase_windows(rnd), args.threshold, min_gain, args.within):
            tag = "useful" if ratio > 1.1 else "harmful" if ratio < 0.9 else "neutral"
            counts[tag] += 1
            print(f"{path.stem} r{rnd['round']} {phase}: {a} → {b}, then {c} "
                  f"predicted {gain:+.1%}, measured {ratio:.2f}x, {at:.1f} s into the "
                  f"phase: {tag}")
    print(f"further = {args.threshold:g}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
