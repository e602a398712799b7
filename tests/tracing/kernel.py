"""What the kernel would hand out for a list of events: ring-buffer pages as
``trace_pipe_raw`` gives them and text as ``trace_pipe`` prints it. Written from
kernel/trace/ring_buffer.c and trace_output.c independently of mltune.ringbuf, and checked
against real captures (tests/test_ringbuf.py), so that property tests can compare the raw
path with the text reference on any events.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from mltune.ringbuf import ASYNC_RA, FAULT, FIELDS, GET_PAGES, SYNC_RA, EventFormat

PAGE = 4096
HEADER = 16  # u64 time stamp, u64 commit
DELTA_BITS = 27


class KEvent(NamedTuple):
    """One event as the kernel records it."""

    ts: int  # ns
    cpu: int
    kind: str
    values: tuple[int, ...]  # in mltune.ringbuf.FIELDS order
    pid: int = 4242
    comm: str = "fio"


def body(kind: str, v: Sequence[int]) -> str:
    """The event's print fmt (6.18), with C's 64-bit loff_t arithmetic."""
    ino, dev = v[0], v[1]
    head = f"dev={dev >> 20}:{dev & ((1 << 20) - 1)} ino={ino:x}"
    if kind == GET_PAGES:
        return f"{head} ofs={s64(v[2] << 12)}-{s64(((v[3] + 1) << 12) - 1)}"
    if kind == FAULT:
        return f"{head} ofs={s64(v[2] << 12)}"
    index, order, size, async_size, ra_pages, mmap_miss, prev_pos, req_count = v[2:]
    return (f"{head} index={index} req_count={req_count} order={order} size={size} "
            f"async_size={async_size} ra_pages={ra_pages} mmap_miss={mmap_miss} "
            f"prev_pos={prev_pos}")


def s64(x: int) -> int:
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >> 63 else x


def line(prefix: str, ts: int, kind: str, v: Sequence[int]) -> str:
    """``prefix`` is "<comm>-<pid> [cpu] <flags>" as trace_print_context writes it."""
    usecs = (ts + 500) // 1000  # ns2usecs
    return f"{prefix} {usecs // 1_000_000:5d}.{usecs % 1_000_000:06d}: {kind}: {body(kind, v)}\n"


def text(events: Sequence[KEvent]) -> str:
    """``trace_pipe`` output: each step the earliest head of the per-CPU streams, the lowest
    CPU on a tie (__find_next_entry)."""
    streams: dict[int, list[KEvent]] = {}
    for e in events:
        streams.setdefault(e.cpu, []).append(e)
    heads = {cpu: 0 for cpu in streams}
    out = []
    while heads:
        cpu = min(heads, key=lambda c: (streams[c][heads[c]].ts, c))
        e = streams[cpu][heads[cpu]]
        heads[cpu] += 1
        if heads[cpu] == len(streams[cpu]):
            del heads[cpu]
        out.append(line(f"{e.comm:>16}-{e.pid:<7} [{cpu:03d}] .....", e.ts, e.kind, e.values))
    return "".join(out)


def capped(txt: str, limit: int) -> str:
    """What mltune's text sampler kept: ``limit`` bytes, whole lines."""
    cut = txt.encode()[:limit].decode("ascii", "replace")
    return cut[: cut.rfind("\n") + 1]


@dataclass(frozen=True)
class Extra:
    """Records the writer may put before an event: padding of a discarded event (its
    delta does not count), a time extend, an absolute time stamp."""

    discarded: int = 0  # bytes of a discarded event before this one (0: none)
    extend: bool = False  # carry the delta in a time extend even if it is small
    absolute: bool = False  # an absolute time stamp instead of a delta


def record(fmt: EventFormat, e: KEvent) -> bytes:
    size = max(off + n for off, n, _ in fmt.fields.values())
    rec = bytearray(-(-size // 4) * 4)
    struct.pack_into("<HBBi", rec, 0, fmt.id, 0, 0, e.pid)
    codes = {1: "B", 2: "H", 4: "I", 8: "Q"}
    for name, value in zip(FIELDS[e.kind], e.values, strict=True):
        off, n, signed = fmt.fields[name]
        code = codes[n].lower() if signed else codes[n]
        struct.pack_into("<" + code, rec, off, value)
    return bytes(rec)


def pages(events: Sequence[KEvent], formats: dict[str, EventFormat],
          extras: Sequence[Extra] = (), cpus: int = 2) -> list[list[bytes]]:
    """Each CPU's events as ``trace_pipe_raw`` pages. ``extras[i]`` adds records before
    the i-th event of its CPU."""
    out: list[list[bytes]] = []
    for cpu in range(cpus):
        evs = [e for e in events if e.cpu == cpu]
        cpu_pages: list[bytes] = []
        data = bytearray()
        page_ts = prev = evs[0].ts if evs else 0
        for i, e in enumerate(evs):
            x = extras[i] if i < len(extras) else Extra()
            recs = bytearray()
            if x.discarded:
                # type_len 29 with a non-zero delta: array[0] is its length (itself included)
                recs += struct.pack("<II", 29 | (1 << 5), x.discarded + 4) + bytes(x.discarded)
            delta = e.ts - prev
            if delta < 0:
                raise ValueError("a CPU's events are recorded in time order")
            if x.absolute:
                recs += struct.pack("<II", 31 | ((e.ts & ((1 << DELTA_BITS) - 1)) << 5),
                                    (e.ts >> DELTA_BITS) & 0xFFFFFFFF)
                delta = 0
            elif x.extend or delta >= 1 << DELTA_BITS:
                recs += struct.pack("<II", 30 | ((delta & ((1 << DELTA_BITS) - 1)) << 5),
                                    delta >> DELTA_BITS)
                delta = 0
            rec = record(formats[e.kind], e)
            recs += struct.pack("<I", (len(rec) // 4) | (delta << 5)) + rec
            if HEADER + len(data) + len(recs) > PAGE:
                cpu_pages.append(_page(page_ts, data))
                data = bytearray()
                page_ts = prev
            data += recs
            prev = e.ts
        if data:
            cpu_pages.append(_page(page_ts, data))
        out.append(cpu_pages)
    return out


def _page(ts: int, data: bytes) -> bytes:
    return struct.pack("<QQ", ts, len(data)) + data + bytes(PAGE - HEADER - len(data))


KINDS = (GET_PAGES, FAULT, SYNC_RA, ASYNC_RA)


def from_text(txt: str) -> list[KEvent]:
    """The events of ``trace`` text (header lines skipped), for turning a text capture
    into pages."""
    out = []
    for raw in txt.splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        context, name, fields = raw.split(": ", 2)
        task, rest = context[:24], context[24:].split()
        cpu, secs = int(rest[0].strip("[]")), rest[-1]
        whole, frac = secs.split(".")
        f = dict(kv.split("=", 1) for kv in fields.split())
        major, minor = (int(x) for x in f["dev"].split(":"))
        dev, ino = major << 20 | minor, int(f["ino"], 16)
        if name == GET_PAGES:
            a, b = (int(x) for x in f["ofs"].split("-"))
            values: tuple[int, ...] = (ino, dev, a >> 12, (b + 1 >> 12) - 1)
        elif name == FAULT:
            values = (ino, dev, int(f["ofs"]) >> 12)
        else:
            values = (ino, dev, *(int(f[k]) for k in ("index", "order", "size", "async_size",
                                                      "ra_pages", "mmap_miss", "prev_pos",
                                                      "req_count")))
        comm, pid = task.rsplit("-", 1)
        out.append(KEvent(int(whole) * 10**9 + int(frac) * 1000, cpu, name, values,
                          int(pid), comm.strip()))
    return out


def perf_records(events: Sequence[KEvent], formats: dict[str, EventFormat],
                 cpus: int = 2, lost: dict[int, int] | None = None) -> list[bytes]:
    """Each CPU's events as perf ``PERF_RECORD_SAMPLE`` records (``PERF_SAMPLE_TIME |
    PERF_SAMPLE_RAW``), from kernel/events/core.c: header, u64 time, u32 raw size, the raw
    event padded so that the record is a multiple of 8 bytes. ``lost[i]`` puts a
    ``PERF_RECORD_LOST`` of that many records before the i-th event of a CPU."""
    out = []
    for cpu in range(cpus):
        data = bytearray()
        for i, e in enumerate(x for x in events if x.cpu == cpu):
            if lost and i in lost:
                data += struct.pack("<IHHQQ", 2, 0, 24, 1, lost[i])
            raw = record(formats[e.kind], e)
            raw += bytes(-(len(raw) + 4) % 8)  # the u32 size and the raw data end on 8
            data += struct.pack("<IHHQI", 9, 0, 8 + 8 + 4 + len(raw), e.ts, len(raw)) + raw
        out.append(bytes(data))
    return out
