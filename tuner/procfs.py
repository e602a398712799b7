"""Parsers for the /proc files drivers observe. Pure functions of text, so tests feed
them captures from real kernels."""

from __future__ import annotations

import re
from typing import NamedTuple


class DiskStat(NamedTuple):
    """Read-side counters of one line of /proc/diskstats (Documentation/admin-guide/iostats.rst)."""

    reads: int
    reads_merged: int
    sectors_read: int
    ms_reading: int
    io_ticks_ms: int


def parse_diskstats(text: str) -> dict[str, DiskStat]:
    out: dict[str, DiskStat] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 14:
            continue
        # fields after major, minor, name: reads merged sectors ms writes ... io_ticks(10th)
        out[f[2]] = DiskStat(int(f[3]), int(f[4]), int(f[5]), int(f[6]), int(f[12]))
    return out


_KV = re.compile(r"^(\w+):?\s+(\d+)", re.MULTILINE)


def parse_keyvalue(text: str) -> dict[str, int]:
    """/proc/vmstat ("name value") and /proc/meminfo ("Name:  value kB")."""
    # One regex pass in C: /proc/vmstat has ~180 lines and this runs every tick.
    return {k: int(v) for k, v in _KV.findall(text)}


def parse_pressure(text: str) -> dict[str, float]:
    """/proc/pressure/* → {"some_avg10": .., ...} (Documentation/accounting/psi.rst)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        for kv in f[1:]:
            k, _, v = kv.partition("=")
            if k in ("avg10", "avg60"):
                out[f"{f[0]}_{k}"] = float(v)
    return out
