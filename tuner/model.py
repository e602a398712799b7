"""LightGBM models: loading with checks, scoring candidates, explaining a choice.

A model is two files: LightGBM text (``<name>.txt``) and JSON metadata (``<name>.json``)
with the feature order, the candidate set, the data summary, held-out metrics and the
sha256 of the text. Never pickle: LightGBM's text parser is the only parser involved, and
it has open out-of-bounds bugs on crafted files (LightGBM #7357, #7437, #7438), so the
hash and the file permissions are checked before the text reaches it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError

if TYPE_CHECKING:
    from .forest import Forest

log = logging.getLogger(__name__)

FORMAT = "mltune-model"
VERSION = 1
CANDIDATE_FEATURE = "cand_log2"


@dataclass(frozen=True)
class ModelMeta:
    driver: str
    features: tuple[str, ...]  # model input order; the last one is CANDIDATE_FEATURE
    candidates: tuple[int, ...]
    sha256: str
    objective: str
    metrics: Mapping[str, Any]
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "driver": self.driver,
                "features": list(self.features), "candidates": list(self.candidates),
                "sha256": self.sha256, "objective": self.objective,
                "metrics": dict(self.metrics), "data": dict(self.data)}


def shipped_paths(driver: str) -> tuple[Path, Path]:
    base = resources.files("mltune.models")
    return Path(str(base / f"{driver}.txt")), Path(str(base / f"{driver}.json"))


def _read_checked(path: Path) -> bytes:
    try:
        st = os.stat(path)
        data = path.read_bytes()
    except OSError as err:
        raise ModelError(f"model file {path}: {err.strerror}") from err
    if st.st_mode & stat.S_IWOTH:
        raise ModelError(f"model file {path} is writable by others; refusing to load it")
    return data


def load_meta(json_path: Path) -> ModelMeta:
    try:
        raw = json.loads(_read_checked(json_path))
        if raw.get("format") != FORMAT or raw.get("version") != VERSION:
            raise ModelError(f"{json_path}: not a {FORMAT} v{VERSION} metadata file")
        return ModelMeta(raw["driver"], tuple(raw["features"]),
                         tuple(int(c) for c in raw["candidates"]), raw["sha256"],
                         raw.get("objective", ""), raw.get("metrics", {}), raw.get("data", {}))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelError(f"{json_path}: invalid model metadata ({err})") from err


class Model:
    """A checked LightGBM booster scoring (observation, candidate) pairs.

    Scores come from ``forest``, the same trees compiled for the agent's one-observation,
    many-candidates calls (:mod:`mltune.forest`), when it reproduces the booster on probe
    rows; from the booster otherwise. Explanations always come from the booster."""

    def __init__(self, booster: Any, meta: ModelMeta, forest: Forest | None = None) -> None:
        self.booster = booster
        self.meta = meta
        self.forest = forest
        self._log2: dict[tuple[int, ...], list[float]] = {}
        self._missing = (math.nan,) * len(meta.features)
        # The drivers' own key objects (their literals are interned): a dict lookup then
        # matches by identity, on keys the driver has just touched, not on cold copies.
        self._names = tuple(map(sys.intern, meta.features))

    @classmethod
    def load(cls, txt_path: Path, json_path: Path, driver: str,
             driver_features: Sequence[str]) -> Model:
        meta = load_meta(json_path)
        text = _read_checked(txt_path)
        digest = hashlib.sha256(text).hexdigest()
        if digest != meta.sha256:
            raise ModelError(f"{txt_path}: sha256 {digest[:12]}… does not match metadata "
                             f"{meta.sha256[:12]}…")
        if meta.driver != driver:
            raise ModelError(f"{txt_path}: model is for driver {meta.driver!r}, not {driver!r}")
        expected = (*driver_features, CANDIDATE_FEATURE)
        if meta.features != expected:
            missing = sorted(set(expected) ^ set(meta.features))
            raise ModelError(f"{txt_path}: feature schema differs from the driver's "
                             f"(differences: {', '.join(missing) or 'order'})")
        import lightgbm  # heavy import, done only when a model is really loaded

        try:
            booster = lightgbm.Booster(model_str=text.decode("utf-8"))
        except Exception as err:  # LightGBM raises its own LightGBMError or ValueError
            raise ModelError(f"{txt_path}: LightGBM refused the model ({err})") from err
        if booster.num_feature() != len(expected):
            raise ModelError(f"{txt_path}: booster has {booster.num_feature()} features, "
                             f"metadata lists {len(expected)}")
        model = cls(booster, meta)
        model.forest = model._checked_forest(text.decode("utf-8"))
        return model

    def _checked_forest(self, text: str) -> Forest | None:
        """The compiled forest if it scores probe rows exactly as the booster does."""
        import numpy as np

        from .forest import Forest, Unsupported, probes

        try:
            forest = Forest(text)
        except Unsupported:
            return None
        if forest.features != len(self.meta.features):
            return None
        cand = len(self.meta.features) - 1
        values = [math.log2(v) for v in self.meta.candidates]
        rows = probes(forest, cand)
        full = np.array([[*r[:cand], v, *r[cand + 1:]] for r in rows for v in values])
        want = self.booster.predict(full, num_threads=1).reshape(len(rows), len(values))
        scorer = forest.native or forest  # as score() calls it
        got = np.array([scorer.predict(r, cand, values) for r in rows])
        if not np.array_equal(got, want):
            # Not an error (the booster scores the same), but 0.3 ms more per tick: say so.
            log.info("compiled forest differs from the booster on probe rows; using the booster")
            return None
        return forest

    def _rows(self, features: Mapping[str, float], values: Sequence[int]) -> Any:
        import numpy as np

        base = [float(features.get(f, math.nan)) for f in self.meta.features[:-1]]
        return np.array([[*base, math.log2(v)] for v in values], dtype=np.float64)

    def score(self, features: Mapping[str, float], values: Sequence[int]) -> dict[int, float]:
        """Predicted throughput of each value as a fraction of the best achievable."""
        if self.forest is None:
            pred = self.booster.predict(self._rows(features, values), num_threads=1)
        else:
            key = tuple(values)
            logs = self._log2.get(key)
            if logs is None:
                logs = self._log2[key] = [math.log2(v) for v in values]
            # Every tick: no Python loop (the forest converts the values to floats, and
            # ignores the candidate feature's own slot, filled here with whatever).
            names = self._names
            base = list(map(features.get, names, self._missing))
            # The native scorer, when there is one, without Forest.predict's Python frame
            # around it (~3 us with cold caches); the loader checked this very call.
            pred = (self.forest.native or self.forest).predict(base, len(names) - 1, logs)
        return dict(zip(values, pred, strict=True))

    def contributions(self, features: Mapping[str, float], value: int) -> dict[str, float]:
        """Per-feature contributions (SHAP, ``pred_contrib``) to the score of ``value``."""
        contrib = self.booster.predict(self._rows(features, [value]), pred_contrib=True,
                                       num_threads=1)[0]
        return {f: float(c) for f, c in zip(self.meta.features, contrib[:-1], strict=True)}
