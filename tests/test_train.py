"""Training on normalised throughput, from a small synthetic dataset in `mltune collect`'s
format: sequential patterns are fastest at 1024, random ones at 4, and tr_seq_frac tells them
apart."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from mltune.drivers.readahead import FEATURES, TRACE_FEATURES
from mltune.errors import MltuneError
from mltune.model import CANDIDATE_FEATURE, Model
from mltune.train import load_dataset, matrix, perf_table, train

VALUES = (4, 64, 1024)
# MB/s per value: sequential streams gain from readahead, random reads lose to it.
MBPS = {
    "seq": {4: 110.0, 64: 320.0, 1024: 610.0},
    "seq_mmap": {4: 90.0, 64: 250.0, 1024: 480.0},
    "rand": {4: 52.0, 64: 31.0, 1024: 9.0},
    "rand_mmap": {4: 40.0, 64: 22.0, 1024: 7.0},
}


def _features(pattern: str, value: int, rng: random.Random) -> dict[str, float | None]:
    seq = pattern.startswith("seq")
    f: dict[str, float | None] = dict.fromkeys(FEATURES)
    f["ra_kb_log2"] = math.log2(value)
    f["tr_seq_frac"] = rng.uniform(0.9, 1.0) if seq else rng.uniform(0.0, 0.08)
    f["tr_near_frac"] = f["tr_seq_frac"] - rng.uniform(0.0, 0.05)
    f["tr_log_gap"] = rng.uniform(0.0, 0.5) if seq else rng.uniform(12.0, 16.0)
    f["tr_fault_frac"] = 1.0 if pattern.endswith("mmap") else 0.0
    return f


def write_dataset(path: Path, reps: int = 2, per_run: int = 3) -> Path:
    rng = random.Random(11)
    lines = [{"format": "mltune-dataset", "version": 1, "driver": "readahead",
              "features": list(FEATURES)}]
    for rep in range(reps):
        for pattern, table in MBPS.items():
            for value in VALUES:
                mbps = table[value] * rng.uniform(0.98, 1.02)
                for _ in range(per_run):
                    lines.append({"pattern": pattern, "rep": rep, "value": value, "mbps": mbps,
                                  "source": "tracefs",
                                  "features": _features(pattern, value, rng)})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("train")
    out = d / "models" / "readahead.txt"
    metrics = train(write_dataset(d / "data.jsonl"), out, FEATURES, TRACE_FEATURES, "readahead")
    return out, metrics


def test_train_writes_model_text_and_metadata(trained: tuple[Path, dict[str, Any]]) -> None:
    out, _ = trained
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["format"] == "mltune-model" and meta["driver"] == "readahead"
    assert meta["features"] == [*FEATURES, CANDIDATE_FEATURE]
    assert meta["candidates"] == list(VALUES)
    assert meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert meta["data"]["best_value_by_pattern"] == {
        "seq": 1024, "seq_mmap": 1024, "rand": 4, "rand_mmap": 4}


def test_held_out_metrics_leave_one_pattern_out(trained: tuple[Path, dict[str, Any]]) -> None:
    _, metrics = trained
    assert set(metrics["held_out_by_pattern"]) == set(MBPS)
    for score in (*metrics["held_out_by_pattern"].values(), metrics["held_out_geomean"],
                  metrics["train_mean"]):
        assert 0.0 <= score <= 1.0
    meta = json.loads(trained[0].with_suffix(".json").read_text())
    assert meta["metrics"] == metrics


def test_trained_model_prefers_large_values_for_sequential_and_small_for_random(
        trained: tuple[Path, dict[str, Any]]) -> None:
    out, _ = trained
    model = Model.load(out, out.with_suffix(".json"), "readahead", FEATURES)
    rng = random.Random(5)
    for pattern, best in (("seq", 1024), ("seq_mmap", 1024), ("rand", 4), ("rand_mmap", 4)):
        feats = {k: (math.nan if v is None else v)
                 for k, v in _features(pattern, 128, rng).items()}
        scores = model.score(feats, VALUES)
        assert max(scores, key=scores.get) == best, (pattern, scores)


def test_perf_table_is_the_median_over_repetitions() -> None:
    rows = [{"pattern": "p", "rep": r, "value": 4, "mbps": m} for r, m in enumerate((1, 9, 5))]
    assert perf_table(rows) == {"p": {4: 5}}


def test_matrix_labels_are_fractions_of_the_pattern_best_with_a_proc_only_copy() -> None:
    rows = [{"pattern": "seq", "rep": 0, "value": 4, "mbps": 100.0,
             "features": {"ra_kb_log2": 2.0, "tr_seq_frac": 1.0}}]
    perf = {"seq": {4: 100.0, 1024: 400.0}}
    X, y, idx = matrix(rows, ["ra_kb_log2", "tr_seq_frac"], perf, ["tr_seq_frac"])
    assert y == [0.25, 1.0, 0.25, 1.0]
    assert [x[-1] for x in X] == [2.0, 10.0, 2.0, 10.0]
    assert X[0][1] == 1.0 and math.isnan(X[2][1])  # second copy: trace feature missing
    assert idx == [0, 0, 0, 0]


def test_dataset_without_header_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text('{"pattern": "seq"}\n')
    with pytest.raises(MltuneError, match="bad header"):
        load_dataset(p)


def test_dataset_with_header_only_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text('{"format": "mltune-dataset", "version": 1}\n')
    with pytest.raises(MltuneError, match="no rows"):
        load_dataset(p)


def test_dataset_cut_mid_row_is_refused(tmp_path: Path) -> None:
    # An interrupted `mltune collect` that died inside a write.
    p = write_dataset(tmp_path / "d.jsonl", reps=1, per_run=1)
    p.write_text(p.read_text()[:-20])
    with pytest.raises(MltuneError, match="unreadable"):
        load_dataset(p)


def test_the_drivers_derived_features_are_what_the_model_is_trained_on(tmp_path: Path) -> None:
    # A derive rule that turns the stream fraction around: trained through it, the model
    # learns that a window showing seq_frac ~1 (as derived from ~0) wants the random
    # readers' value, and the dataset file keeps what was measured.
    data = write_dataset(tmp_path / "data.jsonl")
    before = data.read_bytes()
    seen: list[float | None] = []

    def flip(f: dict[str, Any]) -> dict[str, Any]:
        seen.append(f["tr_seq_frac"])
        return {**f, "tr_seq_frac": 1.0 - f["tr_seq_frac"], "tr_near_frac": None,
                "tr_log_gap": None}

    out = tmp_path / "m" / "readahead.txt"
    train(data, out, FEATURES, TRACE_FEATURES, "readahead", flip)
    assert len(seen) == len(load_dataset(data)[1])  # every row, once
    assert data.read_bytes() == before
    model = Model.load(out, out.with_suffix(".json"), "readahead", FEATURES)
    rng = random.Random(5)
    feats = {k: (math.nan if v is None else v) for k, v in _features("seq", 128, rng).items()}
    feats |= {"tr_near_frac": math.nan, "tr_log_gap": math.nan}
    scores = model.score(feats, VALUES)
    assert max(scores, key=scores.get) == 4, scores


def test_jitter_adds_copies_with_the_feature_scaled_and_the_same_labels() -> None:
    rows = [{"pattern": "seq", "rep": 0, "value": 4, "mbps": 100.0,
             "features": {"ra_kb_log2": 2.0, "rd_req_kb": 8.0, "tr_seq_frac": 1.0}},
            {"pattern": "seq", "rep": 0, "value": 4, "mbps": 100.0,
             "features": {"ra_kb_log2": 2.0, "rd_req_kb": None, "tr_seq_frac": 1.0}}]
    perf = {"seq": {4: 100.0, 1024: 400.0}}
    names = ["ra_kb_log2", "rd_req_kb", "tr_seq_frac"]
    X, y, idx = matrix(rows, names, perf, ["tr_seq_frac"], {"rd_req_kb": (0.5, 2.0)})
    first = [x[1] for x, i in zip(X, idx, strict=True) if i == 0]
    # measured, /proc-only, then each copy of both: x 0.5, x 2 (each for 2 candidates)
    assert first == [8.0, 8.0, 8.0, 8.0, 4.0, 4.0, 4.0, 4.0, 16.0, 16.0, 16.0, 16.0]
    assert y[:12] == [0.25, 1.0] * 6
    # A row without the feature gets no copies: there is nothing to scale.
    assert idx.count(1) == 4


def test_shift_adds_copies_with_the_offset_added_and_the_same_labels() -> None:
    rows = [{"pattern": "seq", "rep": 0, "value": 4, "mbps": 100.0,
             "features": {"ra_kb_log2": 2.0, "tr_rate_log2": 13.0}},
            {"pattern": "seq", "rep": 0, "value": 4, "mbps": 100.0,
             "features": {"ra_kb_log2": 2.0, "tr_rate_log2": None}}]
    perf = {"seq": {4: 100.0, 1024: 400.0}}
    names = ["ra_kb_log2", "tr_rate_log2"]
    X, y, idx = matrix(rows, names, perf, ["tr_rate_log2"], shift={"tr_rate_log2": (-2.0, 1.0)})
    first = [x[1] for x, i in zip(X, idx, strict=True) if i == 0]
    # measured, /proc-only (missing: no copy of it), then the measured one - 2 and + 1
    assert first[:2] == [13.0, 13.0] and all(math.isnan(v) for v in first[2:4])
    assert first[4:] == [11.0, 11.0, 14.0, 14.0]
    assert y[:8] == [0.25, 1.0] * 4
    assert idx.count(1) == 4  # nothing to shift in a row without the feature
