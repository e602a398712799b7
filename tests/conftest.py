"""Fixture trees captured from real kernels, loaded into pyfakefs (see fixtures/*/README.md)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mltune.sysfs import Root

FIXTURES = Path(__file__).parent / "fixtures"
LINUX_618 = FIXTURES / "linux-6.18-vm"
FAKE_ROOT = "/host"


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
