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
from collections.abc import Iterable, Sequence
from pathlib import Path


def ratios(data: dict, regimes: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """pattern → regime → figure ÷ best static of its round, one per phase and round. The
    best static: the sweep's values and the device default, as the score's bar."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rnd in data["rounds"]:
        runs = {r["name"]: r for r in rnd["regimes"]}
        statics = [r for n, r in runs.items() if n.startswith("static-") or n == "default"]
        for i, phase in enumerate(statics[0]["phases"]):
            best = max(r["phases"][i]["mbps"] for r in statics)
            for name in regimes:
                if name in runs and runs[name]["phases"] and best > 0:
                    out[phase["pattern"]][name].append(runs[name]["phases"][i]["mbps"] / best)
    return out


def merge(parts: Iterable[dict[str, dict[str, list[float]]]]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for part in parts:
        for pattern, by_regime in part.items():
            for name, values in by_regime.items():
                out[pattern][name] += values
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--regimes", default="mltune,oracle-late,oracle")
    args = ap.parse_args(argv)
    regimes = [r for r in args.regimes.split(",") if r]
    try:
        table = merge(ratios(json.loads(f.read_text()), regimes) for f in args.files)
    except (OSError, ValueError, KeyError, IndexError) as err:
        ap.exit(2, f"by_phase.py: error: not a readable benchmark JSON: {err}\n")
    print("| phase | n | " + " | ".join(regimes) + " |")
    print("|---" * (len(regimes) + 2) + "|")
    for pattern, by_regime in table.items():
        n = max(len(v) for v in by_regime.values())
        cells = [f"{statistics.median(by_regime[r]):.2f}" if by_regime.get(r) else "-"
                 for r in regimes]
        print(f"| {pattern} | {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
