"""Loading a model refuses anything it cannot trust; a loaded model scores and explains.

On the real disk (tmp_path), not pyfakefs: mltune reads model files itself and hands LightGBM
a string, but importing LightGBM looks for its shared library on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import pytest
from mltune.drivers.readahead import CANDIDATES, MODEL_FEATURES
from mltune.errors import ModelError
from mltune.model import CANDIDATE_FEATURE, Model

NAMES = (*MODEL_FEATURES, CANDIDATE_FEATURE)
SEQ = {"tr_seq_frac": 0.98, "tr_near_frac": 0.97, "ra_kb_log2": 7.0}
RAND = {"tr_seq_frac": 0.02, "tr_near_frac": 0.01, "ra_kb_log2": 7.0}


@pytest.fixture
def files(model_files: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy each test may damage."""
    txt, meta = (Path(shutil.copy(p, tmp_path)) for p in model_files)
    os.chmod(txt, 0o644)
    os.chmod(meta, 0o644)
    return txt, meta


def load(files: tuple[Path, Path], driver: str = "readahead",
         features: tuple[str, ...] = MODEL_FEATURES) -> Model:
    return Model.load(files[0], files[1], driver, features)


def edit_meta(path: Path, **changes: object) -> None:
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


# -- refusals --------------------------------------------------------------------------


def test_model_loads_with_matching_hash_schema_and_driver(files: tuple[Path, Path]) -> None:
    m = load(files)
    assert m.meta.driver == "readahead"
    assert m.meta.features[-1] == CANDIDATE_FEATURE
    assert m.meta.candidates == CANDIDATES


def test_tampered_model_text_fails_the_sha256_check(files: tuple[Path, Path]) -> None:
    with open(files[0], "a", encoding="utf-8") as f:
        f.write("\n")
    with pytest.raises(ModelError, match="sha256"):
        load(files)


def test_driver_with_other_features_is_a_schema_mismatch(files: tuple[Path, Path]) -> None:
    with pytest.raises(ModelError, match="schema"):
        load(files, features=MODEL_FEATURES[:-1])


def test_same_features_in_another_order_is_a_schema_mismatch(files: tuple[Path, Path]) -> None:
    with pytest.raises(ModelError, match="differences: order"):
        load(files, features=(MODEL_FEATURES[1], MODEL_FEATURES[0], *MODEL_FEATURES[2:]))


@pytest.mark.parametrize("which", [0, 1], ids=["text", "metadata"])
def test_world_writable_model_file_is_refused(files: tuple[Path, Path], which: int) -> None:
    os.chmod(files[which], 0o666)
    with pytest.raises(ModelError, match="writable by others"):
        load(files)


def test_model_for_another_driver_is_refused(files: tuple[Path, Path]) -> None:
    with pytest.raises(ModelError, match="'readahead', not 'scheduler'"):
        load(files, driver="scheduler")


def test_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="No such file"):
        load((tmp_path / "none.txt", tmp_path / "none.json"))


def test_metadata_of_another_format_is_refused(files: tuple[Path, Path]) -> None:
    edit_meta(files[1], format="something-else")
    with pytest.raises(ModelError, match="not a mltune-model"):
        load(files)


def test_metadata_that_is_not_json_is_refused(files: tuple[Path, Path]) -> None:
    files[1].write_text('{"format": "mltune-model", "vers')
    with pytest.raises(ModelError, match="invalid model metadata"):
        load(files)


def test_text_lightgbm_cannot_parse_is_refused_after_the_hash_check(
        files: tuple[Path, Path]) -> None:
    bogus = "tree\nversion=v4\nnum_class=banana\n"
    files[0].write_text(bogus)
    edit_meta(files[1], sha256=hashlib.sha256(bogus.encode()).hexdigest())
    with pytest.raises(ModelError):
        load(files)


# -- use -------------------------------------------------------------------------------


def test_score_returns_one_value_per_candidate(files: tuple[Path, Path]) -> None:
    m = load(files)
    scores = m.score(SEQ, CANDIDATES)
    assert list(scores) == list(CANDIDATES)
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores.values())


def test_score_prefers_large_values_for_sequential_and_small_for_random(
        files: tuple[Path, Path]) -> None:
    m = load(files)
    seq, rnd = m.score(SEQ, CANDIDATES), m.score(RAND, CANDIDATES)
    assert max(seq, key=seq.get) >= 1024
    assert max(rnd, key=rnd.get) <= 16


def test_missing_features_are_scored_as_nan(files: tuple[Path, Path]) -> None:
    # /proc-only observations lack every tr_* feature: scoring must still work.
    scores = load(files).score({}, (4, 4096))
    assert set(scores) == {4, 4096}


def test_contributions_name_every_model_input(files: tuple[Path, Path]) -> None:
    m = load(files)
    contrib = m.contributions(SEQ, 1024)
    assert list(contrib) == list(NAMES)
    assert all(math.isfinite(c) for c in contrib.values())
    # The access pattern is what the tiny model learned from.
    assert contrib["tr_seq_frac"] != 0.0
