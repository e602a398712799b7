"""A scratch loop device for the safety benchmarks (crash_restore, freeze), cleaned up after."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def knob(dev: str) -> Path:
    return Path(f"/sys/block/{dev}/queue/read_ahead_kb")


@contextmanager
def scratch_loop(tmp: Path, mib: int = 64) -> Iterator[str]:
    """A loop device over a sparse file in ``tmp``. On exit its read_ahead_kb is put back,
    it is detached, and a tracefs mount that appeared meanwhile is undone (an agent killed
    with SIGKILL cannot unmount what it mounted)."""
    backing = tmp / "disk.img"
    with open(backing, "wb") as f:
        f.truncate(mib << 20)
    dev = subprocess.run(["losetup", "-f", "--show", str(backing)], check=True,
                         capture_output=True, text=True).stdout.strip().rsplit("/", 1)[1]
    before = knob(dev).read_text().strip()
    traced = Path("/sys/kernel/tracing/events").exists()
    try:
        yield dev
    finally:
        knob(dev).write_text(before)
        subprocess.run(["losetup", "-d", f"/dev/{dev}"], check=False)
        if not traced and Path("/sys/kernel/tracing/events").exists():
            subprocess.run(["umount", "/sys/kernel/tracing"], check=False)


@contextmanager
def direct_reads(dev: str) -> Iterator[None]:
    """Direct reads keep the device busy: the agent makes no decision for an idle device."""
    proc = subprocess.Popen(
        ["sh", "-c", f"while :; do dd if=/dev/{dev} of=/dev/null bs=4k iflag=direct "
                     "status=none; done"], start_new_session=True)
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the shell and its dd: our own session
        proc.wait()
