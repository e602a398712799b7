"""mltune._perfswitch: a thread pinned to each CPU switches that CPU's perf group, so the
agent neither sends nor waits for an IPI (tuner/_perfswitch.c). Held here without perf
events: the threads, their pinning and their end, and how an ioctl's error comes back.
tests/kernel/test_trace_raw.py holds the switching of real events."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from mltune.perf import SWITCH

pytestmark = pytest.mark.skipif(
    SWITCH is None, reason="mltune._perfswitch is not built (no C compiler when installed?): "
                           "perf events are switched with plain ioctls")


def tasks() -> dict[int, str]:
    """This process's threads that are a Switcher's, by their names."""
    out = {}
    for t in os.listdir("/proc/self/task"):
        try:
            name = Path(f"/proc/self/task/{t}/comm").read_text().strip()
        except FileNotFoundError:  # a thread that just ended
            continue
        if name.startswith("mltune-cpu"):
            out[int(t)] = name
    return out


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r  # a descriptor every perf ioctl fails on (ENOTTY)
    os.close(r)
    os.close(w)


def test_each_cpu_gets_a_thread_pinned_to_it_until_close(pipe: int) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    assert tasks() == {}
    sw = SWITCH([pipe] * len(cpus), cpus)
    want = {f"mltune-cpu{c}": [c] for c in cpus}
    try:
        deadline = time.monotonic() + 5
        while True:  # a thread names and pins itself when it starts
            got = {name: sorted(os.sched_getaffinity(t)) for t, name in tasks().items()}
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert got == want
    finally:
        sw.close()
    assert tasks() == {}


def test_the_threads_block_signals(pipe: int) -> None:
    """SIGINT and SIGTERM must reach the main thread: Python runs handlers only there."""
    sw = SWITCH([pipe], [min(os.sched_getaffinity(0))])
    try:
        deadline = time.monotonic() + 5
        while not tasks() and time.monotonic() < deadline:  # named when it starts
            time.sleep(0.01)
        (tid,) = tasks()
        status = Path(f"/proc/self/task/{tid}/status").read_text()
        blocked = int(next(ln for ln in status.splitlines() if ln.startswith("SigBlk:"))
                      .split()[1], 16)
        for sig in (2, 15):  # SIGINT, SIGTERM
            assert blocked & (1 << (sig - 1))
    finally:
        sw.close()


def test_an_ioctl_refused_on_another_cpu_is_raised_by_the_next_switch(pipe: int) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: every switch is made by the caller itself")
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpus[0]})  # the caller never runs on the thread's CPU
    try:
        sw = SWITCH([pipe], [cpus[1]])
        try:
            sw.switch(True)  # queued: returns before the thread has tried
            deadline = time.monotonic() + 5
            while sw.errno == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sw.errno == errno.ENOTTY
            with pytest.raises(OSError) as err:
                sw.switch(False)
            assert err.value.errno == errno.ENOTTY
            assert sw.errno == 0  # raised once
        finally:
            sw.close()
    finally:
        os.sched_setaffinity(0, saved)


def test_the_callers_own_cpu_is_switched_at_once(pipe: int) -> None:
    saved = os.sched_getaffinity(0)
    cpu = min(saved)
    os.sched_setaffinity(0, {cpu})
    try:
        sw = SWITCH([pipe], [cpu])
        try:
            with pytest.raises(OSError) as err:
                sw.switch(True)
            assert err.value.errno == errno.ENOTTY
        finally:
            sw.close()
    finally:
        os.sched_setaffinity(0, saved)


def test_a_closed_switcher_refuses_to_switch(pipe: int) -> None:
    sw = SWITCH([pipe], [min(os.sched_getaffinity(0))])
    sw.close()
    sw.close()  # twice is harmless
    with pytest.raises(ValueError, match="closed"):
        sw.switch(True)


@pytest.mark.parametrize("fds,cpus,match", [([3], [], "one CPU per descriptor"),
                                            ([3], [-1], "cpu -1 out of range")])
def test_bad_arguments_are_refused(fds: list[int], cpus: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SWITCH(fds, cpus)
