"""The agent against the real kernel: a loop device, fio in a memory cgroup, tracefs.

Reproduces the issue's acceptance check: while a sequential workload runs the agent raises
read_ahead_kb, while an mmap random workload runs it lowers it, and SIGTERM puts the
original value back.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

MISSING = [t for t in ("fio", "losetup", "mkfs.ext4") if shutil.which(t) is None]


@pytest.fixture()
def lab(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root for loop devices, cgroups and sysfs writes")
    if MISSING:
        pytest.skip(f"missing tools: {', '.join(MISSING)} (apt-get install -y fio)")
    from mltune.lab import Lab

    # 1 GiB of data against a 128 MiB cgroup: the data cannot stay cached.
    with Lab(tmp_path / "lab", size_mib=1024, files=32, mem_limit_mib=128) as lab:
        yield lab


def _ra(dev: str) -> int:
    return int(Path(f"/sys/block/{dev}/queue/read_ahead_kb").read_text())


def _run_phase(lab, pattern: str, seconds: float) -> list[int]:
    """Run a phase and sample the knob every 0.25 s."""
    run = lab.start(pattern, seconds)
    seen = []
    try:
        while run.running():
            seen.append(_ra(lab.device))
            time.sleep(0.25)
    finally:
        run.wait()
    return seen


def test_agent_follows_sequential_then_mmap_random_and_restores_on_sigterm(lab, tmp_path):
    dev = lab.device
    lab.set_read_ahead_kb(128)  # a middle value: the agent must move it both ways
    original = _ra(dev)
    state = tmp_path / "state"
    agent = subprocess.Popen(
        [sys.executable, "-m", "mltune", "run", "--driver", "readahead", "--device", dev,
         "--interval", "0.5", "--state-dir", str(state)],
        stderr=subprocess.PIPE, text=True)
    try:
        seq = _run_phase(lab, "seq", 6)
        rnd = _run_phase(lab, "mmap-rand", 6)
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    assert max(seq[-4:]) > original, f"sequential phase: knob stayed {seq} (log: {err})"
    assert min(rnd[-4:]) < max(seq[-4:]), f"mmap random phase: knob {rnd} after {seq}"
    assert min(rnd[-4:]) <= 32, f"mmap random phase should end small: {rnd}"
    assert _ra(dev) == original, "SIGTERM must restore the original read_ahead_kb"
    audit = (state / "audit.jsonl").read_text().splitlines()
    assert audit, "one audit line per decision"


def test_dry_run_writes_nothing(lab, tmp_path):
    dev = lab.device
    lab.set_read_ahead_kb(128)
    run = lab.start("seq", 4)
    try:
        time.sleep(1)
        done = subprocess.run(
            [sys.executable, "-m", "mltune", "run", "--driver", "readahead", "--device", dev,
             "--dry-run", "--once", "--state-dir", str(tmp_path / "s")],
            capture_output=True, text=True, timeout=60)
    finally:
        run.wait()
    assert done.returncode == 0, done.stderr
    assert _ra(dev) == 128
    assert not (tmp_path / "s" / "journal.json").exists()
