"""The compiled forest scores exactly as LightGBM's booster: the shipped model, small models
with each kind of missing-value split, and models it must refuse (then the booster scores)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import lightgbm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mltune.drivers.readahead import CANDIDATES, MODEL_FEATURES
from mltune.forest import K_ZERO, Forest, Unsupported, goes_left
from mltune.model import Model, shipped_paths

CAND = len(MODEL_FEATURES)  # index of the candidate feature
LOGS = [math.log2(v) for v in CANDIDATES]


@pytest.fixture(scope="module")
def shipped() -> Model:
    return Model.load(*shipped_paths("readahead"), "readahead", MODEL_FEATURES)


def booster_scores(booster: lightgbm.Booster, base: list[float],
                   values: list[float] = LOGS) -> np.ndarray:
    rows = np.array([[*base[:CAND], v] for v in values])
    return booster.predict(rows, num_threads=1)


def special_values(forest: Forest) -> list[float]:
    """Values where splits change their mind: thresholds, their neighbours, and the values
    LightGBM treats specially (NaN, zero and what it rounds to zero, infinities)."""
    out = [math.nan, 0.0, -0.0, K_ZERO, -K_ZERO, K_ZERO * 2, 1e-36, math.inf, -math.inf]
    for t in forest._thresholds:
        out += t + [float(np.nextafter(x, math.inf)) for x in t[:50]]
    return out


def test_shipped_model_is_scored_by_the_forest(shipped: Model) -> None:
    assert shipped.forest is not None


def test_shipped_model_forest_equals_booster_to_the_bit_on_random_rows(shipped: Model) -> None:
    rng = random.Random(5)
    pool = special_values(shipped.forest)
    for _ in range(500):
        base = [rng.choice(pool) if rng.random() < 0.4 else rng.uniform(-2, 1100)
                for _ in range(CAND)]
        got = shipped.forest.predict([*base, 0.0], CAND, LOGS)
        assert np.array_equal(got, booster_scores(shipped.booster, base))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_shipped_model_forest_equals_booster_on_any_floats(shipped: Model,
                                                           data: st.DataObject) -> None:
    floats = st.floats(allow_nan=True, allow_infinity=True) \
        | st.sampled_from(special_values(shipped.forest))
    base = data.draw(st.lists(floats, min_size=CAND, max_size=CAND))
    values = data.draw(st.lists(floats, min_size=1, max_size=12))
    got = shipped.forest.predict([*base, 0.0], CAND, values)
    assert np.array_equal(got, booster_scores(shipped.booster, base, values))


def test_model_score_matches_booster_predict(shipped: Model) -> None:
    feats = {"ra_kb_log2": 7.0, "tr_seq_frac": 0.98, "tr_near_frac": 0.97, "rd_req_kb": 4.0}
    scores = shipped.score(feats, CANDIDATES)
    rows = shipped._rows(feats, CANDIDATES)
    assert list(scores.values()) == shipped.booster.predict(rows, num_threads=1).tolist()


def train(params: dict[str, object], rounds: int = 15, leaves: int = 8) -> lightgbm.Booster:
    """A small regression model on rows with NaNs and zeros, whose label uses both."""
    rng = random.Random(11)
    X, y = [], []
    for _ in range(400):
        row = [rng.choice([math.nan, 0.0, rng.uniform(-3, 3)]) for _ in range(4)]
        row.append(rng.choice(LOGS))
        X.append(row)
        y.append((row[0] if row[0] == row[0] else 5.0) + (row[1] == 0.0) * 2 + row[4] / 3)
    base = {"objective": "regression", "num_leaves": leaves, "min_data_in_leaf": 3,
            "num_threads": 1, "verbose": -1, "seed": 1, "deterministic": True}
    return lightgbm.train({**base, **params}, lightgbm.Dataset(np.array(X), np.array(y)),
                          rounds)


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}, {"use_missing": False},
                                    {"min_data_in_leaf": 1000}],
                         ids=["nan-missing", "zero-missing", "no-missing", "one-leaf-trees"])
def test_small_models_with_each_missing_value_rule(params: dict[str, object]) -> None:
    booster = train(params)
    forest = Forest(booster.model_to_string())
    rng = random.Random(2)
    pool = special_values(forest)
    for _ in range(300):
        base = [rng.choice(pool) if rng.random() < 0.5 else rng.uniform(-4, 4) for _ in range(4)]
        rows = np.array([[*base, v] for v in LOGS])
        got = forest.predict([*base, 0.0], 4, LOGS)
        assert np.array_equal(got, booster.predict(rows, num_threads=1))


@pytest.mark.parametrize("params,leaves", [({"objective": "huber"}, 8),
                                           ({"objective": "regression_l1"}, 8),
                                           ({}, 40)],
                         ids=["other-objective", "l1-objective", "40-leaves"])
def test_models_the_forest_does_not_handle_are_refused(params: dict[str, object],
                                                       leaves: int) -> None:
    with pytest.raises(Unsupported):
        Forest(train(params, leaves=leaves).model_to_string())


def test_categorical_splits_are_refused() -> None:
    rng = random.Random(4)
    X = np.array([[rng.randrange(6), rng.random()] for _ in range(300)])
    y = np.array([x[0] % 3 + x[1] for x in X])
    booster = lightgbm.train({"objective": "regression", "verbose": -1, "min_data_in_leaf": 3,
                              "min_data_per_group": 3, "cat_smooth": 1},
                             lightgbm.Dataset(X, y, categorical_feature=[0]), 5)
    with pytest.raises(Unsupported, match="categorical"):
        Forest(booster.model_to_string())


def test_a_model_the_forest_refuses_is_scored_by_the_booster(
        model_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> None:
        raise Unsupported("test")

    monkeypatch.setattr("mltune.forest.Forest", refuse)
    m = Model.load(*model_files, "readahead", MODEL_FEATURES)
    assert m.forest is None
    scores = m.score({"tr_seq_frac": 0.9}, CANDIDATES)
    assert list(scores.values()) == booster_scores(
        m.booster, [math.nan] * MODEL_FEATURES.index("tr_seq_frac") + [0.9]
        + [math.nan] * (CAND - MODEL_FEATURES.index("tr_seq_frac") - 1)).tolist()


def test_a_forest_that_disagrees_with_the_booster_is_not_used(
        model_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # The NumPy path (tests/test_fastforest.py does the native one).
    monkeypatch.setattr("mltune.forest.NATIVE", None)
    real = Forest.predict
    monkeypatch.setattr(Forest, "predict", lambda self, *a: [x + 1e-15 for x in real(self, *a)])
    assert Model.load(*model_files, "readahead", MODEL_FEATURES).forest is None


def test_same_values_for_another_feature_are_not_scored_with_the_first_features_masks(
        shipped: Model) -> None:
    # The NumPy evaluator caches the candidates' masks; keyed by the values alone, scoring
    # the same values for feature 0 after the candidate feature reused the latter's masks.
    forest = Forest(shipped_paths("readahead")[0].read_text(), native=False)
    base = [math.nan] * (CAND + 1)
    forest.predict(base, CAND, LOGS)
    rows = np.array([[v, *base[1:]] for v in LOGS])
    assert forest.predict(base, 0, LOGS) == shipped.booster.predict(rows, num_threads=1).tolist()


@pytest.mark.parametrize("missing", ["None", "Zero", "NaN"])
def test_goes_left_follows_lightgbm_numerical_decision(missing: str) -> None:
    # Tree::NumericalDecision: NaN is 0 unless the split has a NaN rule; the missing rule
    # sends its values the default way; otherwise value <= threshold goes left.
    assert goes_left(1.0, 1.0, False, missing)
    assert not goes_left(1.5, 1.0, True, missing)
    assert goes_left(math.nan, 1.0, missing != "NaN", missing) == (missing != "NaN")
    assert goes_left(0.0, -1.0, True, missing) == (missing == "Zero")
