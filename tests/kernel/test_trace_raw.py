"""On the real kernel: the sampler's events are those the shipped model was trained on.

1. A tracefs instance's raw pages give the features of the kernel's own text. Each window
   is read twice: first the instance's ``trace`` file (text, not consuming), then the
   sampler drains ``trace_pipe_raw`` as it does every tick. The text goes through the
   reference parser the model was trained with, capped as the old sampler capped it.
2. perf events record the same events as the instance, CPU by CPU, in the same order; the
   cap and the statistics on top are shared code (tests/test_perf.py).
3. The native pass (mltune._fasttrace) gives the Python path's statistics on real windows.
"""

from __future__ import annotations

import mmap
import os
import shutil
import time
from pathlib import Path

import pytest
from mltune import perf as perfmod
from mltune.perf import PerfSource
from mltune.ringbuf import decode
from mltune.sysfs import Root
from mltune.tracefs import TracefsSource
from mltune.tracing import NATIVE, TEXT_LIMIT, TraceSampler, summarize, summarize_records

from tests.test_fasttrace import bits
from tests.tracing import kernel, reference

pytestmark = pytest.mark.kernel

MISSING = [t for t in ("fio", "losetup", "mkfs.ext4") if shutil.which(t) is None]


@pytest.fixture()
def lab(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root for loop devices, cgroups and tracefs")
    if MISSING:
        pytest.skip(f"missing tools: {', '.join(MISSING)} (apt-get install -y fio)")
    from mltune.lab import Lab

    with Lab(tmp_path / "lab", size_mib=512, files=16, mem_limit_mib=96) as lab:
        yield lab


@pytest.mark.parametrize("pattern,ra,window", [("seq", 128, 0.05), ("mmap-rand", 16, 0.2),
                                               ("multi-seq", 2048, 0.05)])
def test_raw_window_features_equal_the_kernel_text_through_the_reference(
        lab, pattern: str, ra: int, window: float) -> None:
    root = Root("/")
    dev = tuple(int(x) for x in Path(f"/sys/block/{lab.device}/dev").read_text().split(":"))
    sampler = TraceSampler(root, {lab.device: [dev]}, source="tracefs")
    sampler.open()
    src = sampler.source
    assert isinstance(src, TracefsSource)
    inst = root.path(src.instance)
    lab.set_read_ahead_kb(ra)
    run = lab.start(pattern, 5)
    try:
        time.sleep(1.5)
        compared = 0
        for _ in range(3):
            src.drain()  # what the last window left
            src.switch(True)
            time.sleep(window)
            src.switch(False)
            text = "".join(line for line in (inst / "trace").read_text().splitlines(True)
                           if not line.startswith("#"))
            raw = summarize(decode(src.drain(), src.table, TEXT_LIMIT))
            want = reference.summarize(kernel.capped(text, TEXT_LIMIT))
            assert reference.equal(raw, want)
            compared += bool(want)
        assert compared, "fio's reads were not traced"
    finally:
        run.stop()
        sampler.close()
    assert not inst.exists()


@pytest.mark.parametrize("pattern,ra", [("seq", 128), ("mmap-rand", 16), ("multi-seq", 2048)])
def test_perf_events_record_what_the_tracefs_instance_records(
        lab, pattern: str, ra: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Switched by the test's own ioctls: a CPU's thread (mltune._perfswitch) may enable its
    # group after the instance began, and this compares windows that must nest.
    monkeypatch.setattr(perfmod, "SWITCH", None)
    root = Root("/")
    dev = tuple(int(x) for x in Path(f"/sys/block/{lab.device}/dev").read_text().split(":"))
    inst = TraceSampler(root, {lab.device: [dev]}, source="tracefs")
    perf = TraceSampler(root, {lab.device: [dev]}, source="perf")
    inst.open()
    try:
        perf.open()
    except BaseException:
        inst.close()
        raise
    t, p = inst.source, perf.source
    assert t is not None and p is not None and p.name == "perf"
    lab.set_read_ahead_kb(ra)
    run = lab.start(pattern, 5)
    try:
        time.sleep(1.0)
        compared = full = 0
        size = p.data_pages * mmap.PAGESIZE
        # Up to 8 windows, until 3 have run and 150 events were compared: a window in which
        # perf's buffer filled before the instance's window began compares nothing.
        for window in range(8):
            if window >= 3 and compared > 150:
                break
            t.drain(), p.drain()
            # perf on first and off last: the instance's window lies within perf's.
            p.switch(True)
            t.switch(True)
            time.sleep(0.05)
            t.switch(False)
            p.switch(False)
            per_cpu = [decode([pages], t.table, 1 << 30) for pages in t.drain()]
            for cpu, buf in zip(p.cpus, p.drain(), strict=True):
                got = list(p._records(buf))  # all of this CPU's events, no text limit
                want = [(e[1], e[2]) for e in per_cpu[cpu]]
                seen = [(e[1], e[2]) for e in got]
                if not want:
                    continue
                # perf saw more at the start: the events between its switch and the
                # instance's (172 once, when the test was preempted there). Past the smaller
                # of the two buffers, they may differ by what each had room for. Preempted
                # longer (a busy VM), perf's buffer was full before the instance began:
                # nothing of this window is in both.
                if want[0] not in seen and len(buf) > size - 256:
                    full += 1
                    continue
                assert want[0] in seen, (f"cpu {cpu}: the instance's first event is not in "
                                         f"perf's {len(seen)} ({len(buf)} of {size} bytes): "
                                         f"{want[0]}")
                start = seen.index(want[0])
                n = min(len(want), len(seen) - start)
                diff = next((i for i in range(n) if seen[start + i] != want[i]), None)
                assert diff is None, (f"cpu {cpu}: perf {len(seen)} events from {start}, "
                                      f"instance {len(want)}; first difference at {diff}: "
                                      f"{seen[start + diff]} != {want[diff]}")
                compared += n
        assert compared > 150, (f"fio's accesses were not traced ({compared} events "
                                f"compared; {full} CPU windows began with perf's buffer full)")
    finally:
        run.stop()
        perf.close()
        inst.close()


@pytest.mark.skipif(NATIVE is None, reason="mltune._fasttrace is not built (no C compiler "
                                           "when installed?): only the Python path exists")
@pytest.mark.parametrize("pattern,ra,window", [("seq", 128, 0.05), ("mmap-rand", 16, 0.2)])
def test_native_statistics_of_perf_windows_equal_the_python_path(lab, pattern: str, ra: int,
                                                                 window: float) -> None:
    dev = tuple(int(x) for x in Path(f"/sys/block/{lab.device}/dev").read_text().split(":"))
    sampler = TraceSampler(Root("/"), {lab.device: [dev]}, source="perf")
    sampler.open()
    src = sampler.source
    assert isinstance(src, PerfSource) and sampler.decoding == "native"
    lab.set_read_ahead_kb(ra)
    run = lab.start(pattern, 5)
    try:
        time.sleep(1.0)
        accesses = 0
        for _ in range(3):
            src.drain()
            src.switch(True)
            time.sleep(window)
            src.switch(False)
            bufs = src.drain()
            lost = src.lost
            want = summarize(src.decode(bufs, TEXT_LIMIT))
            want_lost, src.lost = src.lost - lost, lost
            assert bits(summarize_records(src, bufs, TEXT_LIMIT)) == bits(want)
            assert src.lost - lost == want_lost
            accesses += sum(s.accesses for s in want.values())
        assert accesses > 100, "fio's accesses were not traced"
    finally:
        run.stop()
        sampler.close()


@pytest.mark.parametrize("threaded", [True, False], ids=["a-thread-per-cpu", "ioctls"])
def test_a_window_records_between_its_switches_and_nothing_after(
        lab, threaded: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events are on only in the window, whoever switches them: the agent (``ioctls``) or
    a thread on each CPU (mltune._perfswitch), whose disable may come after switch(False)
    returned, never much later."""
    if not threaded:
        monkeypatch.setattr(perfmod, "SWITCH", None)
    elif perfmod.SWITCH is None:
        pytest.skip("mltune._perfswitch is not built (no C compiler when installed?)")
    dev = tuple(int(x) for x in Path(f"/sys/block/{lab.device}/dev").read_text().split(":"))
    sampler = TraceSampler(Root("/"), {lab.device: [dev]}, source="perf")
    sampler.open()
    src = sampler.source
    assert isinstance(src, PerfSource) and src.threaded == threaded
    lab.set_read_ahead_kb(128)
    run = lab.start("seq", 5)
    try:
        time.sleep(1.0)
        assert sum(map(len, src.drain())) == 0, "recorded before any window"
        src.switch(True)
        time.sleep(0.05)
        src.switch(False)
        assert sum(map(len, src.drain())) > 0, "fio's reads were not traced"
        time.sleep(0.2)  # long enough for a CPU's thread to have run its disable
        src.drain()
        time.sleep(0.3)
        assert sum(map(len, src.drain())) == 0, "still recording after the window"
    finally:
        run.stop()
        sampler.close()
