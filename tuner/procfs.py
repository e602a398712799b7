"""Parsers for the /proc files drivers observe. Pure functions of text, so tests feed
them captures from real kernels."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple


class DiskStat(NamedTuple):
    """Read-side counters of one disk (Documentation/admin-guide/iostats.rst)."""

    reads: int
    reads_merged: int
    sectors_read: int
    ms_reading: int
    io_ticks_ms: int


def parse_u64(text: str) -> int | None:
    """An unsigned counter as the kernel prints it (``%lu``), else None.

    Stricter than ``int()``: no sign, no ``_``, no spaces, at most 20 digits (2**64 has 20),
    so a garbled file can neither raise here (``int()`` refuses beyond 4300 digits) nor
    overflow the float arithmetic of rates later.
    """
    # Not a regex: ~0.4 us a number, 50 numbers a tick. isascii(): isdigit() alone takes
    # other scripts' digits (and "²", which int() refuses).
    return int(text) if len(text) <= 20 and text.isdigit() and text.isascii() else None


def parse_block_stat(text: str) -> DiskStat | None:
    """``/sys/block/<dev>/stat`` (Documentation/block/stat.rst): the counters of the disk's
    /proc/diskstats line without major, minor and name (both print ``part_stat_read_all``),
    for one disk instead of every block device of the machine. None if garbled."""
    f = text.split()
    if len(f) < 11:
        return None
    # read I/Os, read merges, sectors read, ms reading, ..., io_ticks (10th field)
    nums = [n for n in (parse_u64(f[i]) for i in (0, 1, 2, 3, 9)) if n is not None]
    return DiskStat(*nums) if len(nums) == 5 else None


def find_counters(text: bytes, keys: Sequence[bytes], spaces: bool = False,
                  unit: bytes = b"") -> dict[str, int]:
    """The lines ``<key> <value><unit>`` of a /proc file (``spaces``: one or more spaces
    between key and value, else exactly one), for a few keys, the last such line of each:
    what ``re.findall(rb"^(key1|key2) (\\d{1,20})$", text, re.MULTILINE)`` into a dict gives.
    /proc/vmstat has ~180 lines and the features use 3 of them: a regex over every line cost
    ~35 us a tick, searching each key from the end ~1 us. Values are u64 (see parse_u64)."""
    out: dict[str, int] = {}
    size = len(text)
    for key in keys:
        end = size
        while (i := text.rfind(key, 0, end)) >= 0:
            end = i + len(key) - 1  # next: an occurrence starting before this one
            if i and text[i - 1] != 10:  # not at the start of a line
                continue
            j = i + len(key)
            if j >= size or text[j] != 32:
                continue
            j += 1
            while spaces and j < size and text[j] == 32:
                j += 1
            nl = text.find(b"\n", j)
            stop = size if nl < 0 else nl
            if unit:
                if not text.startswith(unit, stop - len(unit), stop):
                    continue
                stop -= len(unit)
            value = text[j:stop]
            if 0 < len(value) <= 20 and value.isdigit():  # bytes.isdigit(): ASCII only
                out[key.decode().rstrip(":")] = int(value)
                break
    return out


# Values are u64 counters (see parse_u64); a longer or signed number leaves its key out.
_KV = re.compile(r"^(\w+):?[ \t]+([0-9]{1,20})\b", re.MULTILINE | re.ASCII)


def parse_keyvalue(text: str) -> dict[str, int]:
    """/proc/vmstat ("name value") and /proc/meminfo ("Name:  value kB")."""
    # One regex pass in C: /proc/vmstat has ~180 lines and this runs every tick.
    return {k: int(v) for k, v in _KV.findall(text)}


def _is_avg(v: str) -> bool:
    """Whether ``v`` is an average as the kernel prints it (``%lu.%02lu``): 1-20 ASCII
    digits, then optionally a dot and 1-20 more. float() would also take "nan", "inf" or
    "1e400" and give values no percentage can have. Not a regex: with the caches cold
    between ticks, the regex engine cost ~30 us a file."""
    whole, dot, frac = v.partition(".")
    return (0 < len(whole) <= 20 and whole.isdigit() and whole.isascii()
            and (not dot or (0 < len(frac) <= 20 and frac.isdigit() and frac.isascii())))


def parse_pressure(text: str) -> dict[str, float]:
    """/proc/pressure/* → {"some_avg10": .., ...} (Documentation/accounting/psi.rst).
    A garbled average is left out: unknown pressure, which the pressure guard allows."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        for kv in f[1:]:
            k, _, v = kv.partition("=")
            if k in ("avg10", "avg60") and _is_avg(v):
                out[f"{f[0]}_{k}"] = float(v)
    return out
