"""Per access pattern, over stored benchmark runs: each regime's figure ÷ its round's best
static, median over every round and run (``bench/readahead.py`` JSON files).

    python bench/by_phase.py bench/results/*late-reclaim.json
    python bench/by_phase.py --regimes mltune,oracle FILE...
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

# bench/ is the script's directory, hence first on sys.path: the sibling imports as a module.
from aggregate import ratios

Table = dict[str, dict[str, list[float]]]  # pattern → regime → ratios


def add_run(table: Table, data: dict, regimes: Sequence[str]) -> None:
    """Add one benchmark JSON's phases: each regime's MB/s ÷ the best static of its round,
    as the run itself stored it (the score's bar)."""
    for rnd in data["rounds"]:
        best = [(b["value"], b["mbps"]) for b in rnd["best_static"]]
        patterns = [b["phase"] for b in rnd["best_static"]]
        for run in rnd["regimes"]:
            if run["name"] in regimes and run["phases"]:  # a failed agent run has none
                got = ratios([p["mbps"] for p in run["phases"]], best)
                for pattern, ratio in zip(patterns, got, strict=True):
                    table[pattern][run["name"]].append(ratio)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--regimes", default="mltune,oracle-late,oracle")
    args = ap.parse_args(argv)
    regimes = [r for r in args.regimes.split(",") if r]
    table: Table = defaultdict(lambda: defaultdict(list))
    for f in args.files:
        try:
            add_run(table, json.loads(f.read_text()), regimes)
        except (OSError, ValueError, KeyError, TypeError) as err:
            ap.exit(2, f"by_phase.py: error: {f}: not a readable benchmark JSON ({err!r})\n")
    print("| phase | n | " + " | ".join(regimes) + " |")
    print("|---" * (len(regimes) + 2) + "|")
    for pattern, by_regime in table.items():
        n = max(len(v) for v in by_regime.values())
        cells = [f"{statistics.median(by_regime[r]):.2f}" if by_regime.get(r) else "-"
                 for r in regimes]
        print(f"| {pattern} | {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
