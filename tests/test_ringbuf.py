"""Raw ring-buffer pages give the features the text parser gave, for the same events.

The reference is the text parser the shipped model was trained with (tests/tracing/
reference.py). Real captures hold the same events twice (``trace`` text and
``trace_pipe_raw`` pages, see fixtures/.../trace/raw/capture.py); property tests build both
forms of arbitrary events with tests/tracing/kernel.py, which the captures check too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mltune import ringbuf
from mltune.errors import MltuneError
from mltune.ringbuf import (
    ASYNC_RA,
    FAULT,
    GET_PAGES,
    PRINT_FMTS,
    SYNC_RA,
    Event,
    check_header_page,
    decode,
    decoders,
    parse_format,
    text_len,
)
from mltune.tracefs import EVENTS
from mltune.tracing import TEXT_LIMIT, summarize

from tests.conftest import LINUX_618
from tests.tracing import kernel, reference
from tests.tracing.kernel import Extra, KEvent

RAW = LINUX_618 / "trace" / "raw"
FORMATS = {f.name: f for f in (parse_format((RAW / f"{ev.replace('/', '-')}.format").read_text())
                               for ev in EVENTS)}
TABLE = decoders(list(FORMATS.values()))
CAPTURES = sorted(p.name[: -len(".trace")] for p in RAW.glob("*.trace"))
BIG = 1 << 40
TABLE_FIXED = {d.kind: d.fixed for d in TABLE.values()}
_WIDE = 100_000 * 10**9  # from here on trace_pipe's seconds take more than 5 digits


def capture(stem: str) -> tuple[str, list[list[bytes]]]:
    """The capture's text without the header, and its pages per CPU."""
    text = "".join(line for line in (RAW / f"{stem}.trace").read_text().splitlines(True)
                   if not line.startswith("#"))
    pages = []
    for cpu in range(2):
        raw = (RAW / f"{stem}.cpu{cpu}.raw").read_bytes()
        pages.append([raw[i:i + kernel.PAGE] for i in range(0, len(raw), kernel.PAGE)])
    return text, pages


# -- real captures -----------------------------------------------------------------------


@pytest.mark.parametrize("stem", CAPTURES)
def test_capture_pages_decode_to_the_lines_the_kernel_printed(stem: str) -> None:
    text, pages = capture(stem)
    lines = text.splitlines(True)
    events = decode(pages, TABLE, BIG)
    assert len(events) == len(lines) > 100
    for (ts, kind, values, n), line in zip(events, lines, strict=True):
        # comm-pid, [cpu] and irq flags are the first 36 characters; the rest is printed
        # from the record: time stamp, event name, fields.
        assert kernel.line(line[:36], ts, kind, values) == line
        assert text_len(kind, ts, values) == n == len(line)


@pytest.mark.parametrize("limit", [TEXT_LIMIT, 2000, 5555, 1 << 20])
@pytest.mark.parametrize("stem", CAPTURES)
def test_capture_features_equal_the_text_reference(stem: str, limit: int) -> None:
    text, pages = capture(stem)
    want = reference.summarize(kernel.capped(text, limit))
    assert want  # the capture has events of the loop device
    assert reference.equal(summarize(decode(pages, TABLE, limit)), want)


def test_a_capture_where_the_text_limit_binds_keeps_the_first_16_kib() -> None:
    text, pages = capture("seq-ra128")
    assert len(text) > 1.5 * TEXT_LIMIT
    kept = decode(pages, TABLE, TEXT_LIMIT)
    assert sum(e[3] for e in kept) == len(kernel.capped(text, TEXT_LIMIT))


def test_kernel_helper_writes_pages_the_capture_way() -> None:
    # The page writer of the property tests, checked on real events: same pages decoded.
    text, pages = capture("multi-seq-ra2048")
    events = decode(pages, TABLE, BIG)
    again = kernel.pages([KEvent(ts, 0, kind, v) for ts, kind, v, _ in events], FORMATS)
    assert decode(again, TABLE, BIG) == events


# -- any events --------------------------------------------------------------------------

INDEX = st.integers(0, 1 << 20) | st.integers(0, (1 << 51) - 1)
U32 = st.integers(0, (1 << 32) - 1)


@st.composite
def kevents(draw: st.DrawFn) -> tuple[list[KEvent], list[Extra]]:
    n = draw(st.integers(0, 80))
    devs = draw(st.lists(st.sampled_from([7 << 20, 7 << 20 | 1, 254 << 20, 4095 << 20 | 99]),
                         min_size=1, max_size=3))
    inos = draw(st.lists(st.integers(1, (1 << 64) - 1), min_size=1, max_size=4))
    ts = draw(st.integers(0, 10**14 + 10**9))  # past 100000 s the seconds widen
    events, extras = [], []
    for _ in range(n):
        ts += draw(st.sampled_from([0, 1, 999, 1500, 40_000]) | st.integers(0, 1 << 30))
        kind = draw(st.sampled_from(kernel.KINDS))
        dev, ino = draw(st.sampled_from(devs)), draw(st.sampled_from(inos))
        index = draw(INDEX)
        if kind == GET_PAGES:
            # Page indices stay below 2**51: a file cannot pass 2**63 bytes (MAX_LFS_FILESIZE),
            # and the text parser could not read the negative offsets beyond.
            last = draw(st.sampled_from([index, index + 1, index + 31]) | INDEX)
            values = (ino, dev, index, min(last, (1 << 51) - 1))
        elif kind == FAULT:
            values = (ino, dev, index)
        else:
            values = (ino, dev, index, draw(U32), draw(U32), draw(U32),
                      draw(st.sampled_from([0, 32, 512, 1024]) | U32), draw(U32),
                      draw(st.integers(-(1 << 63), (1 << 63) - 1)),
                      draw(st.integers(0, (1 << 64) - 1)))
        events.append(KEvent(ts, draw(st.integers(0, 1)), kind, values))
        extras.append(draw(st.builds(Extra, st.sampled_from([0, 0, 0, 8, 36]), st.booleans(),
                                     st.booleans())))
    return events, extras


@settings(max_examples=200, deadline=None)
@given(kevents(), st.sampled_from([TEXT_LIMIT, 300, 3000, 1 << 20]))
def test_any_events_give_the_features_of_their_text(case: tuple[list[KEvent], list[Extra]],
                                                    limit: int) -> None:
    events, extras = case
    pages = kernel.pages(events, FORMATS, extras)
    want = reference.summarize(kernel.capped(kernel.text(events), limit))
    assert reference.equal(summarize(decode(pages, TABLE, limit)), want)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=kernel.PAGE), max_size=3), max_size=3),
       st.integers(0, 1 << 20))
def test_arbitrary_bytes_never_raise(pages: list[list[bytes]], limit: int) -> None:
    summarize(decode(pages, TABLE, limit))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 31), st.integers(0, (1 << 27) - 1), U32),
                max_size=300), U32)
def test_pages_of_arbitrary_headers_never_raise(words: list[tuple[int, int, int]],
                                                commit: int) -> None:
    # Plausible headers with implausible lengths and types: a page of event headers and
    # arrays, which the walker must step through or stop at, never crash on.
    data = b"".join(struct.pack("<II", kind | delta << 5, array) for kind, delta, array in words)
    page = struct.pack("<QQ", 10**12, commit) + data[: kernel.PAGE - 16]
    summarize(decode([[page], [page]], TABLE, 1 << 20))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(kernel.KINDS), st.integers(0, (1 << 64) - 1), INDEX | U32,
       st.integers(0, (1 << 64) - 1))
def test_text_length_is_the_kernel_line_length(kind: str, ts: int, index: int,
                                               other: int) -> None:
    values = {GET_PAGES: (other, 7 << 20, index, other >> 13),
              FAULT: (other, 7 << 20, index),
              SYNC_RA: (other, 7 << 20, index, 1, 2, 3, 4, 5, -1, other),
              ASYNC_RA: (other, 7 << 20, index, 1, 2, 3, 4, 5, 1 << 40, 0)}[kind]
    assert text_len(kind, ts, values) == len(kernel.line(" " * 36, ts, kind, values))
    page = kernel.pages([KEvent(ts, 0, kind, values)], FORMATS, cpus=1)
    (event,) = decode(page, TABLE, BIG)
    assert event[:3] == (ts, kind, values)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([SYNC_RA, ASYNC_RA]), st.integers(0, 2 * _WIDE),
       st.sampled_from([7 << 20, 254 << 20 | 3, 4095 << 20 | 99]), st.integers(0, (1 << 64) - 1),
       st.lists(U32, min_size=5, max_size=5), st.integers(-(1 << 63), (1 << 63) - 1),
       st.integers(0, (1 << 64) - 1), INDEX | st.integers(0, (1 << 64) - 1))
def test_readahead_line_length_is_counted_as_formatted(
        kind: str, ts: int, dev: int, ino: int, u32s: list[int], prev_pos: int, req: int,
        index: int) -> None:
    # Readahead events are counted, not formatted (one per fault of a random mmap reader):
    # the count must be the formatted length for any value, negative prev_pos included.
    values = (ino, dev, index, *u32s, prev_pos, req)
    fixed = TABLE_FIXED[kind]
    assert ringbuf.line_len(kind, ts, values, fixed) == text_len(kind, ts, values)


# -- formats -----------------------------------------------------------------------------


def test_formats_of_6_18_parse_with_their_fields() -> None:
    f = FORMATS[GET_PAGES]
    assert f.id == 599 and f.print_fmt == PRINT_FMTS[GET_PAGES]
    assert f.fields["i_ino"] == (8, 8, False) and f.fields["last_index"] == (32, 8, False)
    assert FORMATS[SYNC_RA].fields["prev_pos"] == (56, 8, True)
    check_header_page((RAW / "header_page").read_text())


def test_a_different_print_format_is_refused() -> None:
    # The text length, hence which events the features cover, is defined by the format.
    f = FORMATS[FAULT]._replace(print_fmt=PRINT_FMTS[FAULT].replace("ofs=", "offset="))
    with pytest.raises(MltuneError, match="print format differs"):
        decoders([f])


def test_a_missing_field_is_refused() -> None:
    fields = dict(FORMATS[GET_PAGES].fields)
    del fields["last_index"]
    with pytest.raises(MltuneError, match="last_index"):
        decoders([FORMATS[GET_PAGES]._replace(fields=fields)])


def test_fields_in_another_order_are_decoded_by_name() -> None:
    f = FORMATS[FAULT]
    moved = {**f.fields, "i_ino": (24, 8, False), "index": (8, 8, False)}
    table = decoders([f._replace(fields=moved)])
    rec = bytearray(32)
    struct.pack_into("<HxxiQI4xQ", rec, 0, f.id, 1, 77, 7 << 20, 0x2c)  # index, dev, ino
    page = struct.pack("<QQI", 5, 36, (32 // 4)) + rec
    assert [e[:3] for e in decode([[page]], table, BIG)] == [(5, FAULT, (0x2c, 7 << 20, 77))]


def test_a_page_layout_other_than_64_bit_little_endian_is_refused() -> None:
    text = (RAW / "header_page").read_text().replace("offset:8;\tsize:8", "offset:8;\tsize:4")
    with pytest.raises(MltuneError, match="page layout"):
        check_header_page(text)


def test_events_of_other_types_are_skipped() -> None:
    other = FORMATS[FAULT]._replace(id=1234)
    e = KEvent(100, 0, FAULT, (1, 7 << 20, 5))
    pages = kernel.pages([e], {FAULT: other}, cpus=1)
    assert decode(pages, TABLE, BIG) == []


def test_ordered_takes_the_earliest_head_even_from_unsorted_streams() -> None:
    # Time stamps of one CPU should not go backwards, but if they did, trace_pipe still
    # takes the smallest head each step, which a sort would not reproduce.
    a = [(5, 0, b"", 0), (1, 0, b"", 1)]
    b = [(3, 1, b"", 2)]
    assert [r[3] for r in ringbuf.ordered([a, b])] == [2, 0, 1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 200)), max_size=30),
                max_size=4),
       st.sampled_from([0, 50, 500, 3000, 1 << 20]))
def test_lazy_merge_keeps_what_cap_keeps_of_fully_decoded_cpus(
        streams: list[list[tuple[int, int]]], limit: int) -> None:
    # Ties and time stamps going backwards included: both take the earliest head each step.
    per_cpu = [[(ts, FAULT, (cpu, i), n) for i, (ts, n) in enumerate(s)]
               for cpu, s in enumerate(streams)]
    cut, over = [], []
    for evs in per_cpu:  # what decode() hands cap(): each CPU up to its first event past limit
        used, kept = 0, []
        for e in evs:
            used += e[3]
            kept.append(e)
            if used > limit:
                break
        cut.append(kept)
        over.append(used > limit)
    taken = [0] * len(per_cpu)

    def counted(cpu: int) -> Iterator[Event]:
        for e in per_cpu[cpu]:
            taken[cpu] += 1
            yield e

    merged = ringbuf.merge_capped([counted(c) for c in range(len(per_cpu))], limit)
    assert merged == ringbuf.cap(cut, over, limit)
    # Each CPU is read at most one event past what is kept of it.
    for cpu in range(len(per_cpu)):
        assert taken[cpu] <= sum(1 for e in merged if e[2][0] == cpu) + 1
