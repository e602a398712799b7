"""The perf event source (mltune.perf) without a kernel: its records decode to exactly the
events the tracefs ring buffer gives for the same events, its ring is read across the wrap,
and hostile bytes never raise. On the real kernel: tests/kernel/test_trace_raw.py."""

from __future__ import annotations

import mmap
import struct
import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mltune import perf, tracefs
from mltune.errors import MltuneError
from mltune.perf import PerfError, PerfSource, online_cpus
from mltune.ringbuf import decode
from mltune.tracing import TEXT_LIMIT, TraceSampler

from tests.test_ringbuf import FORMATS, TABLE, kevents
from tests.tracing import kernel
from tests.tracing.kernel import Extra, KEvent

PAGE = mmap.PAGESIZE


def source(records: list[bytes]) -> PerfSource:
    """A source whose next drain hands out ``records`` (one bytes per CPU)."""
    src = PerfSource(list(FORMATS.values()), TABLE, "s_dev == 1", cpus=[0, 1])
    src.drain = lambda: list(records)  # type: ignore[method-assign]
    return src


@settings(max_examples=200, deadline=None)
@given(kevents(), st.sampled_from([TEXT_LIMIT, 300, 3000, 1 << 20]))
def test_records_give_the_events_of_the_tracefs_pages(case: tuple[list[KEvent], list[Extra]],
                                                      limit: int) -> None:
    events, _ = case
    want = decode(kernel.pages(events, FORMATS), TABLE, limit)
    assert source(kernel.perf_records(events, FORMATS)).events(limit) == want


def test_lost_records_are_counted_and_skipped() -> None:
    events = [KEvent(10**9 + i, 0, "mm_filemap_fault", (0x1b, 7 << 20, i)) for i in range(5)]
    src = source(kernel.perf_records(events, FORMATS, lost={2: 40}))
    assert [e[2][2] for e in src.events(1 << 20)] == [0, 1, 2, 3, 4]
    assert src.lost == 40


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), min_size=1, max_size=3),
       st.sampled_from([TEXT_LIMIT, 100]))
def test_arbitrary_bytes_never_raise(bufs: list[bytes], limit: int) -> None:
    source(bufs).events(limit)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([2, 9, 0, 17]), st.integers(0, 80),
                          st.binary(max_size=80)), max_size=20))
def test_records_of_arbitrary_headers_never_raise(recs: list[tuple[int, int, bytes]]) -> None:
    buf = b"".join(struct.pack("<IHH", kind, 0, size) + body for kind, size, body in recs)
    source([buf]).events(TEXT_LIMIT)


def ring(data_pages: int, tail: int, payload: bytes) -> mmap.mmap:
    """A perf mmap area (metadata page + data pages) holding ``payload`` from ``tail`` on,
    wrapped at the end of the data pages as the kernel writes it."""
    m = mmap.mmap(-1, (1 + data_pages) * PAGE)
    size = data_pages * PAGE
    for i, b in enumerate(payload):
        m[PAGE + (tail + i) % size] = b
    struct.pack_into("<QQQ", m, 1024, tail + len(payload), tail, PAGE)  # head, tail, offset
    return m


@pytest.mark.parametrize("tail", [0, 100, 4 * PAGE - 50, 4 * PAGE * 3 + 7])
def test_drain_reads_across_the_wrap_and_hands_the_space_back(tail: int) -> None:
    payload = bytes(range(256)) * 3
    src = PerfSource(list(FORMATS.values()), TABLE, "", cpus=[0], data_pages=4)
    src._maps = [ring(4, tail, payload)]
    assert src.drain() == [payload]
    head = tail + len(payload)
    assert struct.unpack_from("<Q", src._maps[0], 1032)[0] == head  # data_tail = data_head
    assert src.drain() == [b""]


def test_online_cpus() -> None:
    assert online_cpus("0-3,6\n") == [0, 1, 2, 3, 6]
    assert online_cpus("0") == [0]
    for bad in ("", "x", "0-", "1,,2"):
        with pytest.raises(PerfError):
            online_cpus(bad)


def test_abi_constants() -> None:
    # struct perf_event_attr of PERF_ATTR_SIZE_VER0; _IOW('$', 6, char *) on 64-bit.
    assert perf._ATTR.size == 64
    assert perf._SET_FILTER == 0x40082406


def test_a_power_of_two_of_pages_is_required() -> None:
    with pytest.raises(ValueError):
        PerfSource([], {}, "", [0], data_pages=3)


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="valid: auto, perf, tracefs"):
        TraceSampler(None, {}, source="ebpf")  # type: ignore[arg-type]


def test_a_window_ends_early_once_a_buffer_holds_enough() -> None:
    src = PerfSource(list(FORMATS.values()), TABLE, "", cpus=[0, 1], data_pages=4,
                     enough=4096)
    src._maps = [ring(4, 0, b"x" * 100), ring(4, 0, b"")]
    t0 = time.monotonic()
    src.wait(0.2)  # not enough anywhere: the whole window
    assert time.monotonic() - t0 >= 0.19
    src._maps[1] = ring(4, 8 * PAGE, b"y" * 4096)  # one CPU has enough
    t0 = time.monotonic()
    src.wait(30)
    assert time.monotonic() - t0 < 10


# -- formats read in a private mount namespace (mltune.tracefs.private_formats) ---------


def _ran(stdout: bytes, rc: int = 0, stderr: bytes = b"") -> object:
    return lambda *a, **kw: subprocess.CompletedProcess(a, rc, stdout, stderr)


def test_private_formats_splits_the_files_at_nul(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracefs.subprocess, "run", _ran(b"name: a\n\0name: b\n\0"))
    assert tracefs.private_formats(("x/a", "x/b")) == ["name: a\n", "name: b\n"]


def test_private_formats_names_why_it_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracefs.subprocess, "run", _ran(
        b"name: a\n\0", 1, b"cat: /sys/kernel/tracing/events/x/b/format: No such file\n"))
    with pytest.raises(MltuneError) as info:
        tracefs.private_formats(("x/a", "x/b"))
    assert str(info.value) == ("cannot read tracepoint formats in a private mount: "
                               "cat: /sys/kernel/tracing/events/x/b/format: No such file")
