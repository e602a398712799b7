"""On the real kernel: a knob written by someone else is frozen and left to them at exit;
a loop device attached while the agent runs, matching the config's filters, is picked up."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

ORIGINAL = "8"  # not a candidate value: any decision of the agent changes it
LOOP_CTL_REMOVE = 0x4C81  # linux/loop.h: delete an unbound loop device


def _needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")


def _free_loop_numbers(count: int) -> list[int]:
    """Unused loop numbers, high enough not to collide with `losetup -f` of other tests."""
    free = [n for n in range(240, 400) if not Path(f"/sys/block/loop{n}").exists()]
    return free[:count]


@contextmanager
def _loop(number: int, backing: Path) -> Iterator[Path]:
    """/dev/loopN attached to ``backing``; detached and deleted afterwards (an unbound
    loop device would otherwise stay in /sys/block)."""
    with open(backing, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["losetup", f"/dev/loop{number}", str(backing)], check=True)
    knob = Path(f"/sys/block/loop{number}/queue/read_ahead_kb")
    try:
        knob.write_text(ORIGINAL)
        yield knob
    finally:
        subprocess.run(["losetup", "-d", f"/dev/loop{number}"], check=False)
        fd = os.open("/dev/loop-control", os.O_RDWR)
        try:
            for _ in range(50):  # the detach completes asynchronously
                try:
                    fcntl.ioctl(fd, LOOP_CTL_REMOVE, number)
                    break
                except OSError:
                    time.sleep(0.1)
        finally:
            os.close(fd)


@contextmanager
def _reading(dev: str) -> Iterator[None]:
    """Direct reads keep the device busy: an idle device gets no decision."""
    proc = subprocess.Popen(
        ["sh", "-c", f"while :; do dd if=/dev/{dev} of=/dev/null bs=4k iflag=direct "
                     "status=none; done"], start_new_session=True)
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # our own session: the shell and its dd
        proc.wait()


@contextmanager
def _agent(args: list[str], state: Path, config: str, tmp: Path) -> Iterator[Callable[[], None]]:
    """The agent running; yields ``stop`` (SIGTERM, wait, exit 0), also called on exit."""
    cfg = tmp / "c.yaml"
    cfg.write_text(config)
    traced = Path("/sys/kernel/tracing/events").exists()
    proc = subprocess.Popen([sys.executable, "-m", "mltune", "run", "--driver", "readahead",
                             *args, "--interval", "0.2", "--state-dir", str(state),
                             "--config", str(cfg)], stderr=subprocess.PIPE, text=True)

    def stop() -> None:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err

    try:
        yield stop
    finally:
        try:
            stop()
        finally:
            if not traced and Path("/sys/kernel/tracing/events").exists():
                subprocess.run(["umount", "/sys/kernel/tracing"], check=False)


def _wait(check: Callable[[], bool], timeout: float = 20) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return False


# Direct reads bypass the page cache: the trace sees none of them, and a window that
# caught no access while the disk read writes nothing (mltune.loop). Without the trace
# the model decides on the disk counters, so the agent writes, which these tests need.
CONFIG = ("drivers:\n  readahead:\n    trace: false\n    policies:\n      min_gain: 0.0\n"
          "      cooldown_s: 0\n")


def test_outside_write_freezes_the_target_and_is_left_in_place_at_exit(tmp_path):
    _needs_root()
    [n] = _free_loop_numbers(1)
    dev, state = f"loop{n}", tmp_path / "state"
    with _loop(n, tmp_path / "a.img") as knob, _reading(dev):
        with _agent(["--device", dev], state, CONFIG, tmp_path):
            assert _wait(lambda: knob.read_text().strip() != ORIGINAL), "agent never wrote"
            knob.write_text("1000")  # an admin; the kernel keeps whole pages: 1000
            assert _wait(lambda: dev in json.loads(
                (state / "state.json").read_text()).get("frozen", {}), timeout=5)
            time.sleep(1.0)  # five more ticks: nothing may be written
            assert knob.read_text().strip() == "1000"
        # SIGTERM: the other party's value stands, and the journal no longer holds ours.
        assert knob.read_text().strip() == "1000"
        assert json.loads((state / "journal.json").read_text())["entries"] == []


def test_a_loop_device_attached_later_that_matches_the_filters_is_picked_up(tmp_path):
    _needs_root()
    first, later = _free_loop_numbers(2)
    config = CONFIG + (f"    include: [loop{first}, loop{later}]\n    exclude: []\n")
    state = tmp_path / "state"
    with _loop(first, tmp_path / "a.img"), _agent([], state, config, tmp_path) as stop:
        time.sleep(0.5)
        with _loop(later, tmp_path / "b.img") as knob, _reading(f"loop{later}"):
            # Rediscovery every 10 ticks (2 s here), then one decision.
            assert _wait(lambda: knob.read_text().strip() != ORIGINAL, timeout=15), \
                "the new device was not tuned"
            audit = (state / "audit.jsonl").read_text().splitlines()
            assert any(json.loads(x)["target"] == f"loop{later}" for x in audit)
            stop()
            assert knob.read_text().strip() == ORIGINAL  # restored like the others
