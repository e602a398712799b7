"""The native scorer (mltune._fastforest) gives what the NumPy evaluator gives, to the bit:
on the shipped model and on small models with each missing-value rule, for any floats
(NaN, zeros and what LightGBM rounds to zero, the models' own thresholds and their
neighbours, huge values). The NumPy path is the reference; it is itself held to LightGBM's
booster in tests/test_forest.py. Malformed tables raise instead of crashing."""

from __future__ import annotations

import functools
import math
import random
import struct
from pathlib import Path

import lightgbm
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mltune import forest as forestmod
from mltune.drivers.readahead import CANDIDATES, MODEL_FEATURES
from mltune.forest import NATIVE, Forest
from mltune.model import Model, shipped_paths

from tests.test_forest import CAND, LOGS, special_values, train

WIDTH = CAND + 1  # features of the shipped model, the candidate included

native_only = pytest.mark.skipif(
    NATIVE is None, reason="mltune._fastforest is not built (no C compiler when installed?): "
                           "only the NumPy path exists, nothing to compare")

TINY = [0.0, -0.0, 5e-324, -5e-324, 1e-36, -1e-36, forestmod.K_ZERO, -forestmod.K_ZERO,
        float(np.nextafter(forestmod.K_ZERO, 1)), float(np.nextafter(-forestmod.K_ZERO, -1))]
HUGE = [math.inf, -math.inf, 1e308, -1e308, 1e30, -1e30]


def bits(scores: list[float]) -> list[bytes]:
    """Scores as their bytes: NaN equals NaN, 0.1 differs from 0.1 + 1 ulp, -0.0 from 0.0."""
    return [struct.pack("<d", s) for s in scores]


def floats_for(forest: Forest) -> st.SearchStrategy[float]:
    return st.sampled_from([math.nan, *TINY, *HUGE]) | st.sampled_from(special_values(forest)) \
        | st.floats(allow_nan=True, allow_infinity=True)


@functools.cache
def pair(text: str) -> tuple[Forest, Forest]:
    """The same model text, scored natively and by NumPy."""
    fast, slow = Forest(text), Forest(text, native=False)
    assert fast.native is not None and slow.native is None
    return fast, slow


@functools.cache
def shipped_text() -> str:
    return shipped_paths("readahead")[0].read_text()


@functools.cache
def small_text(params: tuple[tuple[str, object], ...], leaves: int) -> str:
    return train(dict(params), rounds=20, leaves=leaves).model_to_string()


SMALL = {"nan-missing": ((), 8), "zero-missing": ((("zero_as_missing", True),), 8),
         "no-missing": ((("use_missing", False),), 8),
         "one-leaf-trees": ((("min_data_in_leaf", 1000),), 8),
         "32-leaves": ((("min_data_in_leaf", 1),), 32)}


@native_only
@settings(max_examples=400, deadline=None)
@given(st.data())
def test_shipped_model_scores_equal_numpy_to_the_bit(data: st.DataObject) -> None:
    fast, slow = pair(shipped_text())
    floats = floats_for(slow)
    base = data.draw(st.lists(floats, min_size=fast.features, max_size=fast.features))
    feature = data.draw(st.sampled_from([CAND, CAND, 0, fast.features - 2]))
    # More than 64 candidates: the native path has no limit of its own.
    values = data.draw(st.lists(floats, max_size=70) | st.just(LOGS))
    assert bits(fast.predict(base, feature, values)) == bits(slow.predict(base, feature, values))


@native_only
@pytest.mark.parametrize("model", SMALL)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_small_models_score_equal_numpy_to_the_bit(model: str, data: st.DataObject) -> None:
    fast, slow = pair(small_text(*SMALL[model]))
    floats = floats_for(slow)
    base = data.draw(st.lists(floats, min_size=5, max_size=5))
    feature = data.draw(st.integers(0, 4))
    values = data.draw(st.lists(floats, min_size=1, max_size=12) | st.just(LOGS))
    assert bits(fast.predict(base, feature, values)) == bits(slow.predict(base, feature, values))


@native_only
def test_small_models_cover_both_word_widths_and_missing_rules() -> None:
    # What the models above are for: 16- and 32-bit words, NaN- and zero-missing splits.
    assert {pair(small_text(*SMALL[m]))[0].width for m in SMALL} == {16, 32}
    kinds = {k for m in SMALL for k in _decision_types(small_text(*SMALL[m]))}
    assert {(k >> 2) & 3 for k in kinds} == {0, 1, 2}
    assert {k & 2 for k in kinds if (k >> 2) & 3} == {0, 2}  # default left and right


def _decision_types(text: str) -> set[int]:
    return {int(k) for line in text.splitlines() if line.startswith("decision_type=")
            for k in line.split("=")[1].split()}


@native_only
def test_loaded_model_scores_natively(model_files: tuple[Path, Path]) -> None:
    m = Model.load(*model_files, "readahead", MODEL_FEATURES)
    assert m.forest is not None and m.forest.native is not None


@native_only
def test_native_scorer_that_disagrees_with_the_booster_is_not_used(
        model_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    class OffByOneUlp:
        def __init__(self, native: object) -> None:
            self.native = native

        def predict(self, *args: object) -> list[float]:
            return [float(np.nextafter(s, math.inf)) for s in self.native.predict(*args)]

    real = Forest._native
    monkeypatch.setattr(Forest, "_native", lambda self: OffByOneUlp(real(self)))
    assert Model.load(*model_files, "readahead", MODEL_FEATURES).forest is None


def test_without_the_extension_numpy_scores(model_files: tuple[Path, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forestmod, "NATIVE", None)
    m = Model.load(*model_files, "readahead", MODEL_FEATURES)
    assert m.forest is not None and m.forest.native is None
    feats = {"tr_seq_frac": 0.98, "ra_kb_log2": 7.0}
    rows = m._rows(feats, CANDIDATES)
    assert list(m.score(feats, CANDIDATES).values()) \
        == lightgbm.Booster.predict(m.booster, rows, num_threads=1).tolist()


# -- malformed input ---------------------------------------------------------------------


def tables(forest: Forest) -> list[object]:
    """The constructor's arguments for ``forest``, as Forest._native passes them."""
    got: list[object] = []

    class Spy:
        def Forest(self, *args: object) -> None:  # noqa: N802 (the module's class)
            got.extend(args)

    saved = forestmod.NATIVE
    forestmod.NATIVE = Spy()  # type: ignore[assignment]
    try:
        forest._native()
    finally:
        forestmod.NATIVE = saved
    return got


@native_only
@pytest.mark.parametrize("index,value,match", [
    (0, 8, "width 8"),
    (0, 64, "width 64"),
    (1, b"", "counts"),
    (1, b"\x01\x00\x00", "counts"),
    (1, struct.pack("<i", -1) * WIDTH, "thresholds"),
    (2, b"\x00" * 8, "thresholds"),
    (3, b"\x00" * 10, "prefix"),
    (4, b"", "nan"),
    (5, b"\x00" * 3, "zero"),
    (6, b"", "no trees"),
    (7, b"\x00" * 8, "values"),
], ids=["width-8", "width-64", "no-features", "ragged-counts", "negative-count",
        "thresholds", "prefix", "nan", "zero", "no-trees", "values"])
def test_malformed_tables_raise(index: int, value: object, match: str) -> None:
    args = tables(pair(shipped_text())[1])
    args[index] = value
    with pytest.raises(ValueError, match=match):
        NATIVE.Forest(*args)


@native_only
@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_words_of_the_right_shape_score_without_crashing(data: st.DataObject) -> None:
    # Words that no model gives (empty, bits above a tree's leaves) must still read only
    # the tables: the leaf is found by a word's bit length.
    slow = pair(small_text(*SMALL["32-leaves"]))[1]
    args = tables(slow)
    for i in (3, 4, 5, 6):  # prefix, nan, zero, full
        fill = data.draw(st.sampled_from([b"\x00", b"\xff", None]))
        n = len(args[i])
        args[i] = fill * n if fill else random.Random(data.draw(st.integers())).randbytes(n)
    scorer = NATIVE.Forest(*args)
    values = data.draw(st.lists(st.floats(), max_size=5))
    scores = scorer.predict(data.draw(st.lists(st.floats(), min_size=5, max_size=5)),
                            data.draw(st.integers(0, 4)), values)
    assert len(scores) == len(values)


@native_only
@pytest.mark.parametrize("args,error", [
    ((), TypeError),
    (([0.0] * WIDTH, CAND), TypeError),
    (([0.0] * WIDTH, WIDTH, [1.0]), ValueError),
    (([0.0] * WIDTH, -1, [1.0]), ValueError),
    (([0.0] * WIDTH, str(CAND), [1.0]), TypeError),
    (([0.0] * WIDTH, 2**70, [1.0]), OverflowError),
    (([0.0] * CAND, CAND, [1.0]), ValueError),
    (([0.0] * WIDTH, CAND, [None]), TypeError),
    (([0.0] * WIDTH, CAND, 5), TypeError),
    ((None, CAND, [1.0]), TypeError),
], ids=["no-args", "two-args", "feature-too-big", "negative-feature", "feature-not-int",
        "feature-overflow", "short-base", "none-value", "values-not-sequence",
        "base-not-sequence"])
def test_bad_predict_arguments_raise(args: tuple, error: type[Exception]) -> None:
    with pytest.raises(error):
        pair(shipped_text())[0].native.predict(*args)


@native_only
def test_a_row_of_another_numeric_type_scores_as_its_floats() -> None:
    fast, slow = pair(shipped_text())
    base = [np.float32(0.5), 1, True, *[0.25] * (fast.features - 3)]
    want = slow.predict([float(x) for x in base], CAND, LOGS)
    assert bits(fast.predict(base, CAND, np.array(LOGS))) == bits(want)
