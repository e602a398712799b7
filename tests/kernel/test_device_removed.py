"""A loop device removed while the agent runs: dropped with a log line, not a crash."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

# linux/loop.h: /dev/loop-control ioctls
LOOP_CTL_ADD = 0x4C80
LOOP_CTL_REMOVE = 0x4C81


def _attach(backing: Path) -> str:
    out = subprocess.run(["losetup", "-f", "--show", str(backing)], check=True,
                         capture_output=True, text=True).stdout.strip()
    return out.rsplit("/", 1)[1]


@pytest.fixture()
def two_loops(tmp_path: Path):
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")
    if not Path("/dev/loop-control").exists():
        pytest.skip("no /dev/loop-control in this kernel")
    devs = []
    try:
        for i in range(2):
            backing = tmp_path / f"disk{i}.img"
            with open(backing, "wb") as f:
                f.truncate(32 << 20)
            devs.append(_attach(backing))
        yield devs
    finally:
        for dev in devs:
            subprocess.run(["losetup", "-d", f"/dev/{dev}"], capture_output=True, check=False)
            if not Path(f"/sys/block/{dev}").exists():
                # Put the removed device node back: loop devices are preallocated here.
                fd = os.open("/dev/loop-control", os.O_RDWR)
                try:
                    fcntl.ioctl(fd, LOOP_CTL_ADD, int(dev[4:]))
                finally:
                    os.close(fd)


def test_device_removed_mid_run_is_dropped_and_the_agent_keeps_the_other(two_loops, tmp_path):
    gone, kept = two_loops
    agent = subprocess.Popen(
        [sys.executable, "-m", "mltune", "run", "--driver", "readahead", "--device", gone,
         "--device", kept, "--interval", "0.2", "--state-dir", str(tmp_path / "state")],
        stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)
        subprocess.run(["losetup", "-d", f"/dev/{gone}"], check=True)
        fd = os.open("/dev/loop-control", os.O_RDWR)
        try:
            fcntl.ioctl(fd, LOOP_CTL_REMOVE, int(gone[4:]))
        finally:
            os.close(fd)
        assert not Path(f"/sys/block/{gone}").exists()
        time.sleep(1.5)
        assert agent.poll() is None, "the agent must keep running for the other device"
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    assert "Traceback" not in err
    assert f"readahead/{gone}: dropped" in err
