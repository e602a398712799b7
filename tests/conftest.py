"""Fixture trees captured from real kernels, loaded into pyfakefs (see fixtures/*/README.md)."""

from __future__ import annotations

import hashlib
import logging
import math
import random
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mltune.cli import main
from mltune.drivers.readahead import CANDIDATES, MODEL_FEATURES
from mltune.model import CANDIDATE_FEATURE, ModelMeta
from mltune.statefile import write_json
from mltune.sysfs import Root

FIXTURES = Path(__file__).parent / "fixtures"
LINUX_618 = FIXTURES / "linux-6.18-vm"
FAKE_ROOT = "/host"


def short_id(value: object) -> str | None:
    """Parametrize id that keeps a 5000-digit test value from becoming a 5000-char test name."""
    text = str(value)
    return f"{text[:4]}...{len(text)}-chars" if len(text) > 24 else None


@pytest.fixture
def fake_root(fs) -> Iterator[Root]:
    """The 6.18 VM capture at /host in a fake filesystem, writable like sysfs."""
    fs.add_real_directory(str(LINUX_618), target_path=FAKE_ROOT, read_only=False)
    yield Root(FAKE_ROOT)


@pytest.fixture
def root_copy(tmp_path: Path) -> Path:
    """A real on-disk copy of the 6.18 capture, for code pyfakefs cannot reach (subprocesses)."""
    dst = tmp_path / "root"
    shutil.copytree(LINUX_618, dst)
    return dst


@pytest.fixture
def mltune_logger() -> Iterator[logging.Logger]:
    """The CLI rebinds the "mltune" logger to the stderr of the moment; put it back after."""
    log = logging.getLogger("mltune")
    saved = (log.handlers[:], log.level, log.propagate)
    yield log
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        mltune_logger: object) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """Run ``mltune ARGS`` in this process; returns (exit code, stdout, stderr)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["mltune", *args])
        with pytest.raises(SystemExit) as info:
            main()
        out, err = capsys.readouterr()
        return info.value.code, out, err

    yield run
    for s, h in handlers.items():  # `run` installs its own SIGINT/SIGTERM handlers
        signal.signal(s, h)


def tiny_booster():
    """A few trees on synthetic rows: sequential access likes large values, random small."""
    import lightgbm
    import numpy as np

    rng = random.Random(3)
    X, y = [], []
    for _ in range(60):
        seq = rng.random() < 0.5
        frac = rng.uniform(0.9, 1.0) if seq else rng.uniform(0.0, 0.1)
        base = [math.nan] * len(MODEL_FEATURES)
        base[MODEL_FEATURES.index("tr_seq_frac")] = frac
        for v in CANDIDATES:
            X.append([*base, math.log2(v)])
            y.append(math.log2(v) / 12 if seq else 1 - math.log2(v) / 12)
    params = {"objective": "regression", "num_leaves": 4, "min_data_in_leaf": 5,
              "learning_rate": 0.3, "num_threads": 1, "verbose": -1, "seed": 1,
              "deterministic": True}
    data = lightgbm.Dataset(np.array(X), np.array(y),
                            feature_name=[*MODEL_FEATURES, CANDIDATE_FEATURE])
    return lightgbm.train(params, data, 20)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny real readahead model (text + metadata) on disk, trained once per session."""
    d = tmp_path_factory.mktemp("model")
    text = tiny_booster().model_to_string()
    txt = d / "readahead.txt"
    txt.write_text(text, encoding="utf-8")
    meta = ModelMeta("readahead", (*MODEL_FEATURES, CANDIDATE_FEATURE), CANDIDATES,
                     hashlib.sha256(text.encode()).hexdigest(), "test", {}, {})
    write_json(txt.with_suffix(".json"), meta.to_json())
    return txt, txt.with_suffix(".json")
