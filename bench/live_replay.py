"""Score readahead models on live observations that earlier benchmark runs stored.

`bench/readahead.py` keeps, per round, the agent's audit log (every tick's features) and
the static sweep's throughput for every phase. Replayed here, each active tick of the
mltune regime is one question: which of the swept values would this model pick from these
features? The pick is scored by that round's static figure for the phase running then,
divided by the best static figure of that phase. Ticks in the first second of a phase are
left out: their features mix two phases.

This judges a model on the benchmark's own workloads at the values the agent really held,
in seconds instead of a 30-minute run. It is not held out: the phases are fio jobs like the
training patterns. Use it next to `mltune train`'s leave-one-pattern-out score, not instead.

    python bench/live_replay.py models/readahead.txt [OTHER.txt …] [--results DIR]

"moves" counts ticks at a swept value where the model's best beats the current value by the
default config's min_gain, as the MinGain policy reckons it: harmful when the best is
measured > 10 % worse, useful when > 10 % better.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mltune.config import defaults
from mltune.model import Model
from mltune.policies.limits import gain_ratio

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Tick:
    phase: str
    features: dict[str, float]
    ratio: dict[int, float]  # swept value → its figure ÷ the phase's best, that round
    current: int


Window = tuple[float, float, str, dict[int, float]]  # start, end, phase, value → ratio


def rounds(results: Path) -> Iterator[tuple[Path, dict, Path]]:
    """(result file, round, its audit log) of every stored round in which mltune ran."""
    for path in sorted(results.glob("*.json")):
        bench = json.loads(path.read_text())
        if bench.get("format") != "mltune-bench-readahead":
            continue
        for rnd in bench.get("rounds", []):
            audit = path.with_name(f"{path.stem}.r{rnd['round']}.audit.jsonl")
            mltune = next((g for g in rnd["regimes"] if g["name"] == "mltune"), {})
            if audit.exists() and mltune.get("phases"):
                yield path, rnd, audit


def phase_windows(rnd: dict, skip_s: float = 0.0) -> list[Window]:
    """Each of the round's mltune phases, from ``skip_s`` after its start, with every static
    value's figure for that phase divided by the best one's."""
    regimes = {g["name"]: g for g in rnd["regimes"]}
    static = [g for name, g in regimes.items() if name.startswith("static-")]
    windows = []
    for i, ph in enumerate(regimes["mltune"]["phases"]):
        figs = {g["phases"][i]["value"]: g["phases"][i]["mbps"] for g in static}
        best = max(figs.values())
        windows.append((ph["started"] + skip_s, ph["ended"], ph["phase"],
                        {v: m / best for v, m in figs.items()}))
    return windows


def nearest(figures: dict[int, float], value: int) -> float:
    """The figure of ``value``, or of the swept value nearest it in powers of two (the
    agent holds values the sweep did not run, e.g. the device default 2560)."""
    if value in figures:
        return figures[value]
    return figures[min(figures, key=lambda k: abs(math.log2(k) - math.log2(value)))]


def features(tick: dict) -> dict[str, float]:
    """An audited decision's features, JSON null (not measured) back to NaN."""
    return {k: math.nan if v is None else float(v) for k, v in tick["features"].items()}


def load_ticks(results: Path, skip_s: float = 1.0) -> list[Tick]:
    ticks = []
    for _, rnd, audit in rounds(results):
        windows = phase_windows(rnd, skip_s)
        for line in audit.read_text().splitlines():
            x = json.loads(line)
            if x.get("kind") != "decision" or not x.get("scores"):
                continue  # idle, or a tick that scored nothing
            feats = features(x)
            for start, end, phase, ratio in windows:
                if start <= x["time"] <= end:
                    ticks.append(Tick(phase, feats, ratio, int(x["current"])))
    return ticks


def replay(model: Model, ticks: list[Tick], min_gain: float) -> str:
    by_phase: dict[str, list[float]] = defaultdict(list)
    harmful = useful = at_swept = 0
    for t in ticks:
        scores = model.score(t.features, sorted(t.ratio))
        best = max(scores, key=lambda v: scores[v])
        by_phase[t.phase].append(t.ratio[best])
        if t.current in t.ratio:
            at_swept += 1
            if best != t.current and gain_ratio(scores, best, t.current) >= 1 + min_gain:
                harmful += t.ratio[best] < t.ratio[t.current] * 0.9
                useful += t.ratio[best] > t.ratio[t.current] * 1.1
    means = {p: statistics.fmean(v) for p, v in sorted(by_phase.items())}
    geo = math.exp(statistics.fmean(math.log(max(v, 1e-6)) for v in means.values()))
    parts = " ".join(f"{p}={v:.3f}({len(by_phase[p])})" for p, v in means.items())
    return (f"geomean {geo:.3f}  {parts}\n"
            f"  moves: harmful {harmful}, useful {useful} of {at_swept} ticks at a swept value")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="LightGBM text model(s)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    ticks = load_ticks(args.results)
    if not ticks:
        raise SystemExit(f"no benchmark audit logs with phases in {args.results}")
    min_gain = defaults()["drivers"]["readahead"]["policies"]["min_gain"]
    print(f"{len(ticks)} active ticks from {args.results}")
    for path in args.models:
        # A model's own feature list, so that one trained on another schema (an earlier
        # revision's, e.g. `git show REV:models/readahead.txt`) can be compared too.
        meta = json.loads(path.with_suffix(".json").read_text())
        model = Model.load(path, path.with_suffix(".json"), "readahead", meta["features"][:-1])
        print(f"{path}: {replay(model, ticks, min_gain)}")


if __name__ == "__main__":
    main()
