"""On the real kernel: perf-event sampling leaves the host's mount table alone.

Where tracefs is not mounted, the sampler reads the events' formats from a tracefs mounted in a
child's private mount namespace. Before, it mounted tracefs on the host and unmounted it after
reading: two agents starting at once raced (one unmounted while the other read the formats,
and the second fell back to /proc features)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from mltune import tracing
from mltune.errors import MltuneError
from mltune.perf import PerfSource
from mltune.sysfs import Root
from mltune.tracing import TraceSampler

pytestmark = pytest.mark.kernel

EVENTS_DIR = Path("/sys/kernel/tracing/events")


def tracefs_mounts() -> int:
    with open("/proc/self/mountinfo", encoding="ascii") as f:
        return sum(" - tracefs " in line for line in f)


@pytest.fixture()
def unmounted() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and util-linux unshare")
    if EVENTS_DIR.exists():
        pytest.skip("tracefs is mounted on this host; these tests need it unmounted "
                    "(they never unmount what they did not mount)")


def test_two_samplers_opening_at_once_both_get_perf_and_never_mount(unmounted: None) -> None:
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # the host's mount table while both open
        while not done.is_set():
            seen.append(tracefs_mounts())
            time.sleep(0.001)

    samplers = [TraceSampler(Root("/"), {"vda": [(254, 0)]}) for _ in range(2)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def open_one(s: TraceSampler) -> None:
        start.wait()
        try:
            s.open()
        except BaseException as err:  # reported below, with the sampler's own message
            errors.append(err)

    watcher = threading.Thread(target=watch)
    watcher.start()
    openers = [threading.Thread(target=open_one, args=(s,)) for s in samplers]
    try:
        for t in openers:
            t.start()
        for t in openers:
            t.join(30)
        assert errors == []
        assert [type(s.source) for s in samplers] == [PerfSource, PerfSource]
        assert [s.why_not_perf for s in samplers] == ["", ""]
    finally:
        done.set()
        watcher.join()
        for s in samplers:
            s.close()
    assert seen and max(seen) == 0
    assert tracefs_mounts() == 0


def test_without_a_private_mount_the_host_mount_is_undone_after_perf_opens(
        unmounted: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(events: object) -> list[str]:
        raise MltuneError("cannot read tracepoint formats in a private mount: refused")

    monkeypatch.setattr(tracing, "private_formats", refused)
    s = TraceSampler(Root("/"), {"vda": [(254, 0)]})
    try:
        s.open()
        assert isinstance(s.source, PerfSource)
        assert tracefs_mounts() == 0  # mounted to read the formats, unmounted once open
    finally:
        s.close()
    assert tracefs_mounts() == 0
