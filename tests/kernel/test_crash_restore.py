"""kill -9 the agent after it changed a knob: the next start, or `mltune restore`, puts the
original back (same boot); a journal from another boot is discarded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

ORIGINAL = "8"  # not a candidate value: any decision of the agent changes it
# Direct reads bypass the page cache: the trace sees none of them, and a window that
# caught no access while the disk read writes nothing (mltune.loop). Without the trace
# the model decides on the disk counters, so the agent writes, which these tests need.
CONFIG = ("drivers:\n  readahead:\n    trace: false\n    policies:\n      min_gain: 0.0\n"
          "      cooldown_s: 0\n")


@pytest.fixture()
def loop_dev(tmp_path: Path):
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")
    backing = tmp_path / "disk.img"
    with open(backing, "wb") as f:
        f.truncate(32 << 20)
    dev = subprocess.run(["losetup", "-f", "--show", str(backing)], check=True,
                         capture_output=True, text=True).stdout.strip().rsplit("/", 1)[1]
    knob = Path(f"/sys/block/{dev}/queue/read_ahead_kb")
    before = knob.read_text().strip()
    # A killed agent cannot unmount the tracefs it mounted: the test does it for it.
    traced = Path("/sys/kernel/tracing/events").exists()
    knob.write_text(ORIGINAL)
    try:
        yield dev, knob
    finally:
        knob.write_text(before)
        subprocess.run(["losetup", "-d", f"/dev/{dev}"], check=False)
        if not traced and Path("/sys/kernel/tracing/events").exists():
            subprocess.run(["umount", "/sys/kernel/tracing"], check=False)


def _agent(dev: str, state: Path, config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mltune", "run", "--driver", "readahead", "--device", dev,
         "--interval", "0.2", "--state-dir", str(state), "--config", str(config)],
        stderr=subprocess.PIPE, text=True)


def _reader(dev: str) -> subprocess.Popen[bytes]:
    """Direct reads of the device: an idle device gets no decision, so give it work."""
    return subprocess.Popen(
        ["sh", "-c", f"while :; do dd if=/dev/{dev} of=/dev/null bs=4k iflag=direct "
                     "status=none; done"], start_new_session=True)


def _kill_after_first_write(dev: str, knob: Path, state: Path, config: Path) -> None:
    reader = _reader(dev)
    try:
        agent = _agent(dev, state, config)
        deadline = time.monotonic() + 20
        while knob.read_text().strip() == ORIGINAL and time.monotonic() < deadline:
            time.sleep(0.05)
        agent.send_signal(signal.SIGKILL)
        agent.communicate()
    finally:
        os.killpg(reader.pid, signal.SIGKILL)  # our own session: the shell and its dd
        reader.wait()
    assert knob.read_text().strip() != ORIGINAL, "the agent never wrote (test setup)"


def _crashed(dev: str, knob: Path, tmp_path: Path) -> tuple[Path, Path]:
    """An agent killed with SIGKILL right after its first write: (state dir, config)."""
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    state = tmp_path / "state"
    _kill_after_first_write(dev, knob, state, config)
    return state, config


def test_kill_9_then_restart_restores_the_original(loop_dev, tmp_path):
    dev, knob = loop_dev
    state, config = _crashed(dev, knob, tmp_path)
    # The restarted agent restores before its first tick (the device is idle now, so it
    # will not write again).
    agent = _agent(dev, state, config)
    deadline = time.monotonic() + 20
    while knob.read_text().strip() != ORIGINAL and time.monotonic() < deadline:
        time.sleep(0.02)
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    assert "restored readahead/" in err
    assert knob.read_text().strip() == ORIGINAL


def test_kill_9_then_mltune_restore(loop_dev, tmp_path):
    dev, knob = loop_dev
    state, _ = _crashed(dev, knob, tmp_path)
    done = subprocess.run([sys.executable, "-m", "mltune", "restore", "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert knob.read_text().strip() == ORIGINAL
    assert json.loads((state / "journal.json").read_text())["entries"] == []


def test_journal_from_another_boot_is_discarded_not_restored(loop_dev, tmp_path):
    dev, knob = loop_dev
    state = tmp_path / "state"
    state.mkdir()
    knob.write_text("64")
    (state / "journal.json").write_text(json.dumps({
        "format": "mltune-journal", "version": 1, "boot_id": "another-boot",
        "entries": [{"driver": "readahead", "target": dev,
                     "path": f"sys/block/{dev}/queue/read_ahead_kb", "owner": f"sys/block/{dev}",
                     "original": "512", "time": 1.0}]}))
    done = subprocess.run([sys.executable, "-m", "mltune", "restore", "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "another boot" in done.stderr
    assert knob.read_text().strip() == "64"
