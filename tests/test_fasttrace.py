"""The native pass (mltune._fasttrace) gives what the Python path gives: for any perf records,
well-formed or not, the same per-device statistics bit for bit and the same count of lost
records. The Python path (PerfSource.decode, then summarize) is the reference; it is itself
held to the kernel's text in tests/test_ringbuf.py and tests/test_perf.py."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mltune import tracing
from mltune.perf import PerfSource
from mltune.ringbuf import ASYNC_RA, FAULT, GET_PAGES, SYNC_RA, decode, decoders, native_layouts
from mltune.sysfs import Root
from mltune.tracing import NATIVE, TEXT_LIMIT, TraceStats, perf_stats, summarize

from tests.test_ringbuf import BIG, CAPTURES, FORMATS, TABLE, capture
from tests.tracing import kernel
from tests.tracing.kernel import KEvent

pytestmark = pytest.mark.skipif(
    NATIVE is None, reason="mltune._fasttrace is not built (no C compiler when installed?): "
                           "only the Python path exists, nothing to compare")

U64 = (1 << 64) - 1
# Windows of 120 events draw a lot: slow to generate on a busy 2-CPU VM, not a test failure.
BIG_DRAWS = [HealthCheck.too_slow, HealthCheck.data_too_large]
LIMITS = st.sampled_from([TEXT_LIMIT, 0, 90, 300, 3000, 1 << 20, 1 << 70, -(1 << 70)])


def source(bufs: list[bytes], formats: dict = FORMATS) -> PerfSource:
    fmts = list(formats.values())
    src = PerfSource(fmts, decoders(fmts), "", cpus=list(range(max(len(bufs), 1))))
    src.drain = lambda: list(bufs)  # type: ignore[method-assign]
    return src


def bits(stats: dict[tuple[int, int], TraceStats]) -> list:
    """The statistics with floats as their bytes (NaN == NaN, 0.1 != 0.1 + 1 ulp), in order."""
    return [(dev, [(type(v), struct.pack("<d", v) if isinstance(v, float) else v)
                   for v in dataclasses.astuple(s)]) for dev, s in stats.items()]


def python_path(bufs: list[bytes], limit: int, formats: dict = FORMATS) -> tuple[list, int]:
    src = source(bufs, formats)
    return bits(summarize(src.decode(bufs, limit))), src.lost


def native_path(bufs: list[bytes], limit: int, formats: dict = FORMATS) -> tuple[list, int]:
    src = source(bufs, formats)
    assert src.layouts is not None
    return bits(perf_stats(src, limit)), src.lost


def assert_same(bufs: list[bytes], limit: int, formats: dict = FORMATS) -> None:
    assert native_path(bufs, limit, formats) == python_path(bufs, limit, formats)


# -- real captures -----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [TEXT_LIMIT, 2000, 5555, 1 << 20])
@pytest.mark.parametrize("stem", CAPTURES)
def test_captured_windows_as_perf_records(stem: str, limit: int) -> None:
    _, pages = capture(stem)
    events = [KEvent(ts, cpu, kind, v) for cpu, p in enumerate(pages)
              for ts, kind, v, _ in decode([p], TABLE, BIG)]
    assert len(events) > 100
    bufs = kernel.perf_records(events, FORMATS, lost={3: 17})
    assert_same(bufs, limit)
    assert native_path(bufs, limit)[0]  # the capture's device is there


# -- any records -------------------------------------------------------------------------

HUGE = st.integers(0, U64)
INDEX = st.integers(0, 1 << 12) | st.integers(0, (1 << 51) - 1) | HUGE
U32 = st.integers(0, (1 << 32) - 1)


@st.composite
def windows(draw: st.DrawFn) -> tuple[list[KEvent], int, dict[int, int]]:
    """Events of a few CPUs: time stamps tied across CPUs, many inodes or few with more
    interleaved runs than heads, page indices near each other or anywhere up to 2**64."""
    cpus = draw(st.integers(1, 4))
    devs = draw(st.lists(st.sampled_from([7 << 20, 7 << 20 | 1, 254 << 20, 4095 << 20 | 99,
                                          U64 >> 32]), min_size=1, max_size=3))
    inos = draw(st.lists(st.integers(1, U64), min_size=1, max_size=3) |
                st.just(list(range(1, 60))))
    base = draw(st.integers(0, 3) | INDEX)
    ts = draw(st.integers(0, 10**14 + 10**9) | st.integers(U64 - 10**12, U64 - 10**11))
    events = []
    for _ in range(draw(st.integers(0, 120))):
        ts = min(ts + draw(st.sampled_from([0, 0, 1, 1500]) | st.integers(0, 1 << 30)), U64)
        kind = draw(st.sampled_from(kernel.KINDS))
        dev, ino = draw(st.sampled_from(devs)), draw(st.sampled_from(inos))
        index = draw(st.integers(0, 40).map(lambda d: min(base + d * 37, U64)) | INDEX)
        if kind == GET_PAGES:
            last = draw(st.sampled_from([index, index + 1, index + 31, index - 3]) | INDEX)
            values: tuple[int, ...] = (ino, dev, index, max(0, min(last, U64)))
        elif kind == FAULT:
            values = (ino, dev, index)
        else:
            values = (ino, dev, index, draw(U32), draw(U32), draw(U32),
                      draw(st.sampled_from([0, 4, 32, 512, 1024]) | U32), draw(U32),
                      draw(st.sampled_from([-1, 0]) | st.integers(-(1 << 63), (1 << 63) - 1)),
                      draw(HUGE))
        events.append(KEvent(ts, draw(st.integers(0, cpus - 1)), kind, values))
    lost = draw(st.dictionaries(st.integers(0, 40), st.integers(0, U64), max_size=3))
    return events, cpus, lost


@settings(max_examples=400, deadline=None, suppress_health_check=BIG_DRAWS)
@given(windows(), LIMITS)
def test_any_window_gives_the_statistics_of_the_python_path(
        case: tuple[list[KEvent], int, dict[int, int]], limit: int) -> None:
    events, cpus, lost = case
    assert_same(kernel.perf_records(events, FORMATS, cpus, lost), limit)


@settings(max_examples=300, deadline=None, suppress_health_check=BIG_DRAWS)
@given(windows(), LIMITS, st.data())
def test_cut_or_corrupted_records_give_what_python_gives(
        case: tuple[list[KEvent], int, dict[int, int]], limit: int, data: st.DataObject) -> None:
    # Python stops a CPU at anything malformed: a record cut short by the end of the buffer,
    # a size under 8 or past the end, fields past the end; garbage is read as records.
    events, cpus, lost = case
    bufs = kernel.perf_records(events, FORMATS, cpus, lost)
    out = []
    for buf in bufs:
        cut = data.draw(st.integers(0, len(buf)))
        buf = bytearray(buf[:cut] if data.draw(st.booleans()) else buf)
        for _ in range(data.draw(st.integers(0, 3))):
            if buf:
                buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
        out.append(bytes(buf) + data.draw(st.binary(max_size=40)))
    assert_same(out, limit)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), min_size=1, max_size=3), LIMITS)
def test_arbitrary_bytes_give_what_python_gives(bufs: list[bytes], limit: int) -> None:
    assert_same(bufs, limit)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([2, 9, 0, 17]), st.integers(0, 80),
                          st.binary(max_size=80)), max_size=30), LIMITS)
def test_records_of_arbitrary_headers_give_what_python_gives(
        recs: list[tuple[int, int, bytes]], limit: int) -> None:
    buf = b"".join(struct.pack("<IHH", kind, 0, size) + body for kind, size, body in recs)
    assert_same([buf], limit)


# -- other field layouts -----------------------------------------------------------------


def moved(name: str, signed: bool) -> dict:
    """The event's fields in reverse order of offsets, optionally all signed: the decoders
    read fields by name, and Python's digits of negative numbers carry a sign."""
    f = FORMATS[name]
    names = sorted(f.fields, key=lambda n: f.fields[n][0])
    fields, pos = {}, 8  # after the common fields
    for n in reversed(names):
        off, size, sign = f.fields[n]
        if off < 8:
            fields[n] = (off, size, sign)
            continue
        fields[n] = (pos, size, signed or sign)
        pos += size
    return {**FORMATS, name: f._replace(fields=fields)}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(kernel.KINDS), st.booleans(), st.lists(
    st.tuples(st.integers(-(1 << 63), (1 << 63) - 1), st.sampled_from([7 << 20, -5, -(1 << 31)]),
              st.integers(-(1 << 63), (1 << 63) - 1), st.integers(0, 1 << 20)),
    min_size=1, max_size=20), st.integers(0, 1 << 60), LIMITS)
def test_fields_in_another_order_or_signed_give_what_python_gives(
        kind: str, signed: bool, rows: list[tuple[int, int, int, int]], ts: int,
        limit: int) -> None:
    formats = moved(kind, signed)
    events = []
    for i, (ino, dev, index, small) in enumerate(rows):
        if not signed:
            ino, dev, index = ino & U64, dev & 0xFFFFFFFF, index & U64
        values = {GET_PAGES: (ino, dev, index, index + small),
                  FAULT: (ino, dev, index),
                  SYNC_RA: (ino, dev, index, small, 2, 3, small, 5, -small, small),
                  ASYNC_RA: (ino, dev, index, 1, small, 3, small, 5, small, small)}[kind]
        if kind == GET_PAGES and not signed:
            values = (ino, dev, index, min(index + small, U64))
        if kind == GET_PAGES and signed:
            values = (ino, dev, index, max(min(index + small, (1 << 63) - 1), -(1 << 63)))
        events.append(KEvent(ts + i * 1000, i % 2, kind, values))
    assert_same(kernel.perf_records(events, formats), limit, formats)


# -- the wrapper -------------------------------------------------------------------------


def test_lost_records_are_added_to_the_source_as_python_adds_them() -> None:
    events = [KEvent(10**9 + i, i % 2, FAULT, (0x1b, 7 << 20, i)) for i in range(10)]
    bufs = kernel.perf_records(events, FORMATS, lost={0: 5, 2: 40, 4: U64})
    for limit in (0, 200, 1 << 20):
        assert_same(bufs, limit)
    assert native_path(bufs, 1 << 20)[1] == 2 * (5 + 40 + U64)


def test_runs_of_2_64_pages_square_past_128_bits() -> None:
    # A get_pages event from index 0 to the last index: a run of 2**64 pages, whose square
    # only Python's integers (and the native 192-bit sum) hold.
    events = [KEvent(10, 0, GET_PAGES, (1, 7 << 20, 0, U64)),
              KEvent(20, 0, GET_PAGES, (2, 7 << 20, 0, U64))]
    bufs = kernel.perf_records(events, FORMATS)
    assert_same(bufs, 1 << 20)


def test_a_malformed_layout_table_is_refused() -> None:
    assert NATIVE is not None
    for table in (b"\x01", b"\x00\x00\x09\x03" + bytes(4), b"\x00\x00\x01\x03" + bytes(4)):
        with pytest.raises(ValueError, match="layout"):
            NATIVE.summarize_records([b""], table, 100)


def test_layouts_that_do_not_fit_are_left_to_python() -> None:
    f = FORMATS[FAULT]
    far = f._replace(fields={**f.fields, "index": (70000, 8, False)})
    assert native_layouts([far], decoders([far])) is None


def test_the_sampler_says_which_path_decodes() -> None:
    sampler = tracing.TraceSampler(Root("/"), {})
    sampler.source = source([b""])
    assert sampler.decoding == "native"
    sampler.native = False
    assert sampler.decoding == "Python (native decoding switched off)"
    sampler.source = None
    assert sampler.decoding == "none (not open)"
