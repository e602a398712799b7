"""`mltune train`: fit the scoring model on a collected dataset.

The model is a LightGBM regressor on *normalised throughput*: for an observation taken
while pattern P ran at some value, the label of candidate c is throughput(P, c) divided by
the best throughput of P over all values. Scoring every candidate and taking the largest
then picks the value predicted to come closest to the per-pattern best, and the difference
of two scores is a predicted gain in the same unit the hysteresis policy uses. A ranker
would order candidates too, but gives no gain in a unit a person can set a threshold in.

Held-out accuracy is measured leaving one *pattern* out at a time: the question that
matters is how the model does on access patterns it never saw.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import MltuneError
from .model import CANDIDATE_FEATURE, ModelMeta
from .statefile import write_json

PARAMS = {"objective": "regression", "num_leaves": 15, "learning_rate": 0.05,
          "min_data_in_leaf": 10, "feature_fraction": 0.9, "bagging_fraction": 0.9,
          "bagging_freq": 1, "lambda_l2": 1.0, "seed": 7, "deterministic": True,
          "num_threads": 2, "verbose": -1}
ROUNDS = 300


def read_dataset(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Header and rows of a dataset file, which may have no rows yet."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        rows = [json.loads(line) for line in lines[1:] if line.strip()]
    except (OSError, ValueError, IndexError) as err:
        raise MltuneError(f"dataset {path}: unreadable ({err})") from err
    if not isinstance(header, dict) or header.get("format") != "mltune-dataset":
        raise MltuneError(f"dataset {path}: not an mltune dataset (bad header)")
    return header, rows


def load_dataset(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header, rows = read_dataset(path)
    if not rows:
        raise MltuneError(f"dataset {path}: no rows")
    return header, rows


def perf_table(rows: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """Median throughput per (pattern, value) over runs."""
    runs: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    for r in rows:
        runs[(r["pattern"], r["value"])][r["rep"]] = r["mbps"]
    table: dict[str, dict[int, float]] = defaultdict(dict)
    for (pattern, value), by_rep in runs.items():
        table[pattern][value] = statistics.median(by_rep.values())
    return dict(table)


def matrix(rows: Sequence[dict[str, Any]], features: Sequence[str],
           perf: dict[str, dict[int, float]], trace_features: Sequence[str] = (),
           jitter: Mapping[str, Sequence[float]] | None = None,
           shift: Mapping[str, Sequence[float]] | None = None
           ) -> tuple[list[list[float]], list[float], list[int]]:
    """Rows × candidates → (X, y, row index). With ``trace_features``, each observation is
    also added with those features missing, so the model has a /proc-only route. With
    ``jitter`` (feature → factors), each is also added with that feature times each factor:
    a difference smaller than the factors span is then no ground for a split. ``shift``
    (feature → offsets) does the same by adding each offset: for features on a log scale."""
    X: list[list[float]] = []
    y: list[float] = []
    idx: list[int] = []
    # Each copy is feature j times k plus d: jitter scales, shift adds (exact in floats).
    copies = [*((features.index(f), k, 0.0) for f, ks in (jitter or {}).items() for k in ks),
              *((features.index(f), 1.0, d) for f, ds in (shift or {}).items() for d in ds)]
    for i, r in enumerate(rows):
        best = max(perf[r["pattern"]].values())
        base = [_num(r["features"].get(f)) for f in features]
        variants = [base]
        if trace_features:
            variants.append([math.nan if f in trace_features else v
                             for f, v in zip(features, base, strict=True)])
        measured = list(variants)
        for j, k, d in copies:
            variants += [[*v[:j], v[j] * k + d, *v[j + 1:]] for v in measured
                         if not math.isnan(v[j])]
        for feats in variants:
            for value, mbps in perf[r["pattern"]].items():
                X.append([*feats, math.log2(value)])
                y.append(mbps / best if best > 0 else 0.0)
                idx.append(i)
    return X, y, idx


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _fit(X: list[list[float]], y: list[float], names: Sequence[str]) -> Any:
    import lightgbm
    import numpy as np

    data = lightgbm.Dataset(np.array(X), np.array(y), feature_name=list(names),
                            free_raw_data=False)
    return lightgbm.train(PARAMS, data, ROUNDS)


def evaluate(booster: Any, rows: Sequence[dict[str, Any]], features: Sequence[str],
             perf: dict[str, dict[int, float]], values: Sequence[int]) -> list[float]:
    """For each observation, the true normalised throughput of the value the model picks."""
    import numpy as np

    out = []
    for r in rows:
        base = [_num(r["features"].get(f)) for f in features]
        pred = booster.predict(np.array([[*base, math.log2(v)] for v in values]))
        pick = values[int(np.argmax(pred))]
        table = perf[r["pattern"]]
        out.append(table.get(pick, 0.0) / max(table.values()))
    return out


def train(dataset: Path, out_txt: Path, features: Sequence[str],
          trace_features: Sequence[str], driver: str,
          derive: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
          jitter: Mapping[str, Sequence[float]] | None = None,
          shift: Mapping[str, Sequence[float]] | None = None) -> dict[str, Any]:
    """``derive``: the driver's rule for features inferred from the others (the readahead
    driver's ``told_random``), applied to each row as the driver applies it when it
    observes, so the model sees what the agent will. It must change nothing applied twice:
    rows collected through the driver's observe() already carry it.
    ``jitter``, ``shift``: the driver's features whose small differences are noise
    (:func:`matrix`)."""
    _, rows = load_dataset(dataset)
    if derive is not None:
        rows = [{**r, "features": derive(dict(r["features"]))} for r in rows]
    perf = perf_table(rows)
    values = sorted({v for t in perf.values() for v in t})
    names = [*features, CANDIDATE_FEATURE]
    held_out: dict[str, float] = {}
    for pattern in sorted(perf):
        train_rows = [r for r in rows if r["pattern"] != pattern]
        test_rows = [r for r in rows if r["pattern"] == pattern]
        X, y, _ = matrix(train_rows, features, perf, trace_features, jitter, shift)
        booster = _fit(X, y, names)
        held_out[pattern] = statistics.mean(evaluate(booster, test_rows, features, perf, values))
    X, y, _ = matrix(rows, features, perf, trace_features, jitter, shift)
    booster = _fit(X, y, names)
    train_fit = statistics.mean(evaluate(booster, rows, features, perf, values))
    text = booster.model_to_string()
    out_txt.parent.mkdir(parents=True, exist_ok=True)
    out_txt.write_text(text, encoding="utf-8")
    metrics = {
        "held_out_by_pattern": {k: round(v, 4) for k, v in held_out.items()},
        "held_out_geomean": round(math.exp(statistics.mean(
            math.log(max(v, 1e-6)) for v in held_out.values())), 4),
        "train_mean": round(train_fit, 4),
        "meaning": "true throughput of the picked value ÷ best value's, per observation; "
                   "held out = trained without that pattern",
    }
    data = {"dataset": dataset.name, "rows": len(rows), "patterns": sorted(perf),
            "values": values, "best_value_by_pattern":
                {p: max(t, key=lambda v: t[v]) for p, t in perf.items()},
            "mbps_by_pattern": {p: {str(v): round(m, 1) for v, m in sorted(t.items())}
                                for p, t in perf.items()}}
    meta = ModelMeta(driver, tuple(names), tuple(values),
                     hashlib.sha256(text.encode("utf-8")).hexdigest(),
                     f"regression on normalised throughput, {ROUNDS} rounds"
                     + "".join(f"; {f} also x {', '.join(f'{k:g}' for k in ks)}"
                               for f, ks in (jitter or {}).items())
                     + "".join(f"; {f} also + {', '.join(f'{d:g}' for d in ds)}"
                               for f, ds in (shift or {}).items()),
                     metrics, data)
    write_json(out_txt.with_suffix(".json"), meta.to_json())
    return metrics
