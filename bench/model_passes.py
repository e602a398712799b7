"""Does a second pass of `mltune collect` make a better model? Leave-one-pattern-out, fairly.

Each pattern is held out in turn; one model is trained on the first pass only (its own labels),
another on every pass (median labels), and both are judged on the held-out pattern's rows of
every pass against the all-pass medians: throughput of the pick ÷ the best, as `mltune train`
reports it. Prints both per pattern and their geometric means.

    python bench/model_passes.py data/readahead-dataset.jsonl
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from mltune.drivers.readahead import MODEL_FEATURES, TRACE_FEATURES
from mltune.model import CANDIDATE_FEATURE
from mltune.train import _fit, evaluate, load_dataset, matrix, perf_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", type=Path)
    args = ap.parse_args()
    _, rows = load_dataset(args.dataset)
    judge = perf_table(rows)
    first = min(r["rep"] for r in rows)
    one = [r for r in rows if r["rep"] == first]
    one_perf = perf_table(one)
    values = sorted({v for t in judge.values() for v in t})
    feats, names = list(MODEL_FEATURES), [*MODEL_FEATURES, CANDIDATE_FEATURE]
    got: dict[str, tuple[float, float]] = {}
    for pattern in sorted(judge):
        test = [r for r in rows if r["pattern"] == pattern]
        scores = []
        for train_rows, perf in (([r for r in one if r["pattern"] != pattern], one_perf),
                                 ([r for r in rows if r["pattern"] != pattern], judge)):
            X, y, _ = matrix(train_rows, feats, perf, TRACE_FEATURES)
            scores.append(statistics.mean(evaluate(_fit(X, y, names), test, feats, judge,
                                                   values)))
        got[pattern] = (scores[0], scores[1])
        print(f"{pattern:<16} first pass {scores[0]:.3f}   all passes {scores[1]:.3f}",
              flush=True)
    for i, label in enumerate(("first pass", "all passes")):
        g = math.exp(statistics.mean(math.log(max(v[i], 1e-6)) for v in got.values()))
        print(f"held-out geomean, {label}: {g:.4f}")


if __name__ == "__main__":
    main()
