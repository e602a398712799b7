"""Decoding of the tracefs ring buffer as ``per_cpu/cpuN/trace_pipe_raw`` hands it out.

Why binary: reading ``trace_pipe`` makes the kernel format every event as text, and parsing
that text back took most of a tick (README, "Tick time"). The raw pages carry the same events
unformatted.

Why the text still matters: the shipped model was trained on features computed from the
first ``limit`` bytes of ``trace_pipe`` text (whole lines only). To compute features over the
same events, :func:`decode` keeps the longest run of events, in ``trace_pipe``'s order, whose
text would fit in ``limit`` bytes; :func:`text_len` is the length of the line the kernel prints
for an event (``trace_print_context`` and the event's ``print fmt`` with the default trace
options), checked byte for byte against captured buffers in the tests.

Layout (kernel/trace/ring_buffer.c; 64-bit little-endian, checked against
``events/header_page`` when a sampler opens): a page is a u64 timestamp, a u64 ``commit``
(low 27 bits: bytes of event data; the top bits flag missed events, which a non-overwriting
buffer does not report), then events. Each event starts with a u32: ``type_len`` (5 bits) and
``time_delta`` (27 bits). ``type_len`` 1..28 is a data event of ``4 * type_len`` bytes, 0 one
whose length is the next u32, 29 padding (rest of the page if its delta is 0), 30 a time
extend and 31 an absolute time stamp (the next u32 holds bits 27..58 of either).
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from heapq import merge
from operator import itemgetter
from typing import NamedTuple

from .errors import MltuneError

GET_PAGES, FAULT, SYNC_RA, ASYNC_RA = ("mm_filemap_get_pages", "mm_filemap_fault",
                                       "page_cache_sync_ra", "page_cache_async_ra")
# The print formats the features (and the text length) were defined on, as in
# events/<system>/<event>/format of Linux 6.18.
_ACCESS_ARGS = ('"dev=%d:%d ino=%lx ofs=%lld{}", ((unsigned int) ((REC->s_dev) >> 20)), '
                '((unsigned int) ((REC->s_dev) & ((1U << 20) - 1))), REC->i_ino, '
                '((loff_t)REC->index) << 12{}')
_RA_FMT = ('"dev=%d:%d ino=%lx index=%lu req_count=%lu order=%u size=%u async_size=%u '
           'ra_pages=%u mmap_miss=%u prev_pos=%lld", ((unsigned int) ((REC->s_dev) >> 20)), '
           '((unsigned int) ((REC->s_dev) & ((1U << 20) - 1))), REC->i_ino, REC->index, '
           'REC->req_count, REC->order, REC->size, REC->async_size, REC->ra_pages, '
           'REC->mmap_miss, REC->prev_pos')
PRINT_FMTS = {
    GET_PAGES: _ACCESS_ARGS.format("-%lld", ", ((((loff_t)REC->last_index + 1) << 12) - 1)"),
    FAULT: _ACCESS_ARGS.format("", ""),
    SYNC_RA: _RA_FMT,
    ASYNC_RA: _RA_FMT,
}
# Fields each event is decoded into, in this order: the order of the fields in the record
# on 6.18, so that one struct unpacks them without reordering.
FIELDS = {
    GET_PAGES: ("i_ino", "s_dev", "index", "last_index"),
    FAULT: ("i_ino", "s_dev", "index"),
    SYNC_RA: ("i_ino", "s_dev", "index", "order", "size", "async_size", "ra_pages",
              "mmap_miss", "prev_pos", "req_count"),
}
FIELDS[ASYNC_RA] = FIELDS[SYNC_RA]
KINDS = (GET_PAGES, FAULT, SYNC_RA, ASYNC_RA)  # as numbered in mltune._fasttrace
_MAX_LAYOUTS = 16  # event types _fasttrace takes (MAXLAYOUTS)
INO, DEV, INDEX, LAST_INDEX, RA_PAGES = 0, 1, 2, 3, 6  # positions in the values above

_PAGE_HEADER = struct.Struct("<QQ").unpack_from
_U32 = struct.Struct("<I").unpack_from
_COMMIT_MASK = (1 << 27) - 1
_U64 = (1 << 64) - 1
_TS_MSB = 0xF8 << 56  # bits an absolute time stamp event does not carry (rb_fix_abs_ts)
_FIELD = re.compile(r"field:([^;]*?)\s*([A-Za-z_]\w*)(?:\[\d*\])?;\s*offset:(\d+);\s*size:(\d+);"
                    r"\s*signed:(\d+);")
_CODES = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
          (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}
# "<comm 16>-<pid 7> [cpu] <irq flags> <secs 5+>.<usecs 6>: " before the event name, with
# the default options (context-info, irq-info on; record-tgid off).
_CONTEXT = 16 + 1 + 7 + 1 + 6 + 5 + 1 + 5 + 1 + 6 + 2
_WIDE_TS = 100_000 * 10**9 - 500  # from here on the seconds take more than 5 digits
# Characters of each line besides the context and the numbers (names, "dev=", ": ", "\n").
_FIXED = {GET_PAGES: len(GET_PAGES) + len(": dev=: ino= ofs=-\n"),
          FAULT: len(FAULT) + len(": dev=: ino= ofs=\n"),
          SYNC_RA: len(SYNC_RA) + len(": dev=: ino= index= req_count= order= size= "
                                      "async_size= ra_pages= mmap_miss= prev_pos=\n")}
_FIXED[ASYNC_RA] = _FIXED[SYNC_RA] + len(ASYNC_RA) - len(SYNC_RA)

# Decimal digits: a number of b bits has _DIGITS[b] digits, one more if >= _POW10[_DIGITS[b]].
_DIGITS = [1] + [len(str(1 << (b - 1))) for b in range(1, 65)]
_POW10 = [10**k for k in range(21)]
_DEV_DIGITS: dict[int, int] = {}  # s_dev → digits of "major" + "minor"

# A decoded event: (timestamp in ns of the trace clock, event name, FIELDS values, length
# of the line trace_pipe prints for it).
Event = tuple[int, str, tuple[int, ...], int]


class EventFormat(NamedTuple):
    """One event's ``format`` file: its id, fields (offset, size, signed) and print format."""

    id: int
    name: str
    fields: dict[str, tuple[int, int, bool]]
    print_fmt: str


class Decoder(NamedTuple):
    kind: str
    unpack: Callable[[bytes, int], tuple[int, ...]]
    fixed: int  # line length without the numbers and without the context


def parse_format(text: str) -> EventFormat:
    """Parse ``events/<system>/<event>/format``."""
    head = dict(line.split(": ", 1) for line in text.splitlines()
                if line.startswith(("name: ", "ID: ", "print fmt: ")))
    try:
        ident = int(head["ID"])
        name = head["name"].strip()
        fmt = head["print fmt"].strip()
    except (KeyError, ValueError) as err:
        raise MltuneError(f"unreadable tracepoint format ({err})") from err
    fields = {m[2]: (int(m[3]), int(m[4]), m[5] == "1") for m in _FIELD.finditer(text)}
    return EventFormat(ident, name, fields, fmt)


def check_header_page(text: str) -> None:
    """Refuse a ring-buffer page layout other than the one :func:`walk` decodes."""
    fields = {m[2]: (int(m[3]), int(m[4])) for m in _FIELD.finditer(text)}
    want = {"timestamp": (0, 8), "commit": (8, 8), "data": (16, fields.get("data", (0, 0))[1])}
    if sys.byteorder != "little" or any(fields.get(k) != v for k, v in want.items()):
        raise MltuneError(f"unsupported ring-buffer page layout: {fields}")


def decoders(formats: Sequence[EventFormat]) -> dict[int, Decoder]:
    """Event id → how to unpack its :data:`FIELDS` from a record, for the sampled events.
    A print format other than the one the features were defined on is refused: the text
    length, and so which events are kept, would not be known."""
    out = {}
    for f in formats:
        if f.name not in FIELDS:
            raise MltuneError(f"tracepoint {f.name} is not one mltune decodes")
        if f.print_fmt != PRINT_FMTS[f.name]:
            raise MltuneError(f"tracepoint {f.name}: print format differs from the one the "
                              f"features are defined on ({f.print_fmt[:60]}…)")
        try:
            spec = [f.fields[n] for n in FIELDS[f.name]]
            codes = [_CODES[size, signed] for _, size, signed in spec]
        except KeyError as err:
            raise MltuneError(f"tracepoint {f.name}: field {err} missing or unusual") from err
        # One struct over the fields in offset order, then back to FIELDS order if needed.
        order = sorted(range(len(spec)), key=lambda i: spec[i][0])
        layout, pos = "<", 0
        for i in order:
            offset, size, _ = spec[i]
            if offset < pos:
                raise MltuneError(f"tracepoint {f.name}: overlapping fields")
            layout += f"{offset - pos}x{codes[i]}" if offset > pos else codes[i]
            pos = offset + size
        unpack = struct.Struct(layout).unpack_from
        if order != sorted(order):
            unpack = _reordered(unpack, itemgetter(*[order.index(i) for i in range(len(spec))]))
        kind = next(k for k in FIELDS if k == f.name)  # the constant: equal at once, by identity
        out[f.id] = Decoder(kind, unpack, _CONTEXT + _FIXED[kind])
    return out


def native_layouts(formats: Sequence[EventFormat], table: dict[int, Decoder]) -> bytes | None:
    """What ``mltune._fasttrace`` needs of :func:`decoders`' ``table``, packed: per event id
    its kind (index in :data:`KINDS`), the fixed parts of its line (``Decoder.fixed`` as
    :func:`line_len` counts it, and as :func:`text_len` does), then offset, size and sign of
    each of its :data:`FIELDS`, in that order. None if a number does not fit its slot (a
    field past 64 KiB): then the records are decoded in Python."""
    out = bytearray()
    ids = [f for f in formats if f.id in table]
    if len(ids) > _MAX_LAYOUTS:
        return None
    try:
        for f in ids:
            dec = table[f.id]
            out += struct.pack("<HBBHH", f.id, KINDS.index(dec.kind), len(FIELDS[dec.kind]),
                               dec.fixed, _CONTEXT + _FIXED[dec.kind])
            for name in FIELDS[dec.kind]:
                offset, size, signed = f.fields[name]
                out += struct.pack("<HBB", offset, size, signed)
    except struct.error:
        return None
    return bytes(out)


def _reordered(unpack: Callable[[bytes, int], tuple[int, ...]],
               back: Callable[[tuple[int, ...]], tuple[int, ...]]) \
        -> Callable[[bytes, int], tuple[int, ...]]:
    return lambda buf, off: back(unpack(buf, off))


def ordered(per_cpu: Sequence[list[Event]]) -> list[Event]:
    """Events of all CPUs in ``trace_pipe``'s order: repeatedly the earliest head of the
    per-CPU streams, the lowest CPU on a tie (``__find_next_entry``)."""
    busy = [evs for evs in per_cpu if evs]
    if len(busy) <= 1:
        return busy[0] if busy else []
    first = itemgetter(0)
    if all(all(a[0] <= b[0] for a, b in zip(evs, evs[1:], strict=False)) for evs in busy):
        # Sorted streams (the usual case): a stable sort of their concatenation in CPU order
        # takes the same heads, in C.
        return sorted([e for evs in busy for e in evs], key=first)
    return list(merge(*busy, key=first))


def text_len(kind: str, ts: int, v: tuple[int, ...]) -> int:
    """Bytes of the line ``trace_pipe`` prints for an event (see the module docstring)."""
    secs = ((ts + 500) // 1000) // 1_000_000  # ns2usecs rounds
    n = _CONTEXT + _FIXED[kind] + (len(str(secs)) - 5 if secs >= 100_000 else 0)
    dev = v[DEV]
    if kind == GET_PAGES:
        return n + len(f"{dev >> 20}{dev & 0xFFFFF}{v[INO]:x}{_s64(v[INDEX] << 12)}"
                       f"{_s64(((v[LAST_INDEX] + 1) << 12) - 1)}")
    if kind == FAULT:
        return n + len(f"{dev >> 20}{dev & 0xFFFFF}{v[INO]:x}{_s64(v[INDEX] << 12)}")
    return n + len("{}{}{:x}{}{}{}{}{}{}{}{}".format(dev >> 20, dev & 0xFFFFF, *v[:1], *v[2:]))


def line_len(kind: str, ts: int, v: tuple[int, ...], fixed: int) -> int:
    """:func:`text_len` counted instead of formatted, given the event's ``fixed`` part
    (:class:`Decoder`): this runs for every sampled event. The tests hold them equal."""
    if kind is FAULT or kind is GET_PAGES:
        a = v[2] << 12
        if ts < _WIDE_TS and not a >> 63 and not (kind is GET_PAGES and v[3] >> 51):
            dev = v[1]
            d = _DEV_DIGITS.get(dev)
            if d is None:
                d = _DEV_DIGITS[dev] = len(f"{dev >> 20}{dev & 0xFFFFF}")
            k = _DIGITS[a.bit_length()]
            n = fixed + d + ((v[0].bit_length() + 3) >> 2 or 1) + k + (a >= _POW10[k])
            if kind is GET_PAGES:
                b = ((v[3] + 1) << 12) - 1
                k = _DIGITS[b.bit_length()]
                n += k + (b >= _POW10[k])
            return n
    elif ts < _WIDE_TS and v[0] >= 0:
        # Readahead events: about one per fault of a random mmap reader, so as many as the
        # faults; formatting their ten numbers cost 5x counting them.
        dev = v[1]
        d = _DEV_DIGITS.get(dev)
        if d is None:
            d = _DEV_DIGITS[dev] = len(f"{dev >> 20}{dev & 0xFFFFF}")
        n = fixed + d + ((v[0].bit_length() + 3) >> 2 or 1)
        for x in v[2:]:
            if x < 0:  # prev_pos is signed
                n += 1
                x = -x
            k = _DIGITS[x.bit_length()]
            n += k + (x >= _POW10[k])
        return n
    # Long time stamps and offsets past 2**63: slowly.
    return text_len(kind, ts, v)


def _s64(x: int) -> int:
    """``loff_t`` arithmetic: the kernel shifts in 64 bits."""
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


def decode(per_cpu_pages: Sequence[Sequence[bytes]], table: dict[int, Decoder],
           limit: int) -> list[Event]:
    """Events of the pages read from each CPU's ``trace_pipe_raw``, in ``trace_pipe``'s
    order, as many as ``trace_pipe`` would have printed in ``limit`` bytes of whole lines.
    Records of other event types are skipped (the sampler enables only its own)."""
    per_cpu, over = [], []
    for pages in per_cpu_pages:
        # No CPU brings more than ``limit`` bytes of lines, so each is decoded up to the
        # first event past that, which stays as a marker: in the merged order, nothing after
        # it can be kept, and without it events of other CPUs would take its place.
        events: list[Event] = []
        used = 0
        for page in pages:
            used = _decode_page(page, table, limit, used, events)
            if used > limit:
                break
        if events:
            per_cpu.append(events)
            over.append(used > limit)
    return cap(per_cpu, over, limit)


def cap(per_cpu: Sequence[list[Event]], over: Sequence[bool], limit: int) -> list[Event]:
    """The events of all CPUs in ``trace_pipe``'s order, as many as fit in ``limit`` bytes
    of text. Each CPU's list was decoded up to its first event past ``limit`` (``over``)."""
    busy = [(evs, o) for evs, o in zip(per_cpu, over, strict=True) if evs]
    if len(busy) <= 1:  # one CPU (the usual case): no merging
        if not busy:
            return []
        evs, o = busy[0]
        return evs[:-1] if o else evs
    merged = ordered([evs for evs, _ in busy])
    used = 0
    for i, e in enumerate(merged):
        used += e[3]
        if used > limit:
            return merged[:i]
    return merged


def merge_capped(streams: Sequence[Iterator[Event]], limit: int) -> list[Event]:
    """The events of the per-CPU ``streams`` in ``trace_pipe``'s order (the earliest head,
    the lowest CPU on a tie, as :func:`ordered`), as many as fit in ``limit`` bytes of text.
    The same as :func:`cap` of the streams decoded in full, but a stream is read only as far
    as the merged order takes it (one event past what is kept)."""
    heads = [(e, s) for e, s in ((next(s, None), s) for s in streams) if e is not None]
    out: list[Event] = []
    append, used = out.append, 0
    while len(heads) > 1:
        i = 0
        for j in range(1, len(heads)):
            if heads[j][0][0] < heads[i][0][0]:
                i = j
        e, s = heads[i]
        used += e[3]
        if used > limit:
            return out
        append(e)
        e = next(s, None)
        if e is None:
            del heads[i]
        else:
            heads[i] = e, s
    for e, s in heads:  # one stream left: nothing to compare
        while e is not None:
            used += e[3]
            if used > limit:
                return out
            append(e)
            e = next(s, None)
    return out


def _decode_page(page: bytes, table: dict[int, Decoder], limit: int, used: int,
                 out: list[Event]) -> int:
    """Append the events of one page to ``out`` until the text so far (``used`` bytes)
    passes ``limit``, that event included; return the text length. Stops at anything
    malformed.

    Walking the records and decoding them is one loop, and the line length is counted,
    not formatted (:func:`text_len` is the plain version; the tests hold them equal): this
    runs for every sampled event."""
    if len(page) < 16:
        return used
    ts, commit = _PAGE_HEADER(page, 0)
    end = min(16 + (commit & _COMMIT_MASK), len(page))
    pos = 16
    get = table.get
    while pos + 4 <= end:
        (h,) = _U32(page, pos)
        kind = h & 31
        if 0 < kind <= 28:
            ts += h >> 5  # rb_update_read_stamp: data events carry their delta
            off = pos + 4
            pos = off + 4 * kind
        elif pos + 8 > end:
            return used
        else:
            (word,) = _U32(page, pos + 4)
            if kind == 0:  # long record: its length (including this word) follows
                if word < 4:
                    return used
                ts += h >> 5
                off = pos + 8
                pos += 4 + word
            else:
                if kind == 29:  # padding or a discarded event: no time of its own
                    if h >> 5 == 0:
                        return used
                    pos += 4 + word
                elif kind == 30:  # time extend
                    ts += (word << 27) | (h >> 5)
                    pos += 8
                else:  # absolute: rb_fix_abs_ts puts back the top bits, and their overflow
                    stamp = (word << 27) | (h >> 5)
                    if ts & _TS_MSB:
                        stamp |= ts & _TS_MSB
                        if stamp < ts:
                            stamp = (stamp + (1 << 59)) & _U64
                    ts = stamp
                    pos += 8
                continue
        dec = get(page[off] | page[off + 1] << 8) if off + 1 < end else None
        if dec is None:
            continue  # not an event mltune enabled
        name, unpack, n = dec
        try:
            v = unpack(page, off)
        except struct.error:  # record cut short by a malformed page
            return used
        ts &= _U64  # the kernel's clock arithmetic is u64
        n = line_len(name, ts, v, n)
        used += n
        out.append((ts, name, v, n))
        if used > limit:
            return used
    return used
