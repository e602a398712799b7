"""The text parser mltune used before reading raw ring-buffer pages, kept as the reference
the features are defined by: the shipped model was trained on what this computed from the
first 16 KiB of ``trace_pipe`` text (commit 0d5b3aa, tuner/tracing.py). Tests hold the raw
path equal to it. Its _Acc is kept as it was; only TraceStats comes from mltune, so that
results compare with ``==``.
"""

from __future__ import annotations

import math
import re

from mltune.tracing import NEAR_GAP_PAGES, STREAM_GAP_PAGES, TraceStats

# "<comm>-<pid> [cpu] flags 167.996149: mm_filemap_get_pages: dev=7:0 ino=b ofs=1507328-1511423"
# One regex per event family, run over the whole buffer at once: per-line Python work is
# what makes parsing cost, and the tick budget is about a millisecond.
_ACCESS = re.compile(
    r" (\d+\.\d+): mm_filemap_(get_pages|fault): dev=(\d+):(\d+) ino=([0-9a-f]+) "
    r"ofs=(\d+)(?:-(\d+))?")
_RA = re.compile(
    r": page_cache_(sync|async)_ra: dev=(\d+):(\d+) ino=([0-9a-f]+) index=\d+ req_count=\d+ "
    r"order=\d+ size=\d+ async_size=\d+ ra_pages=(\d+)")


def summarize(text: str) -> dict[tuple[int, int], TraceStats]:
    """Turn the text of a trace buffer into per-device statistics (pure, for tests)."""
    per_dev: dict[tuple[int, int], _Acc] = {}
    # Readahead events first: they give each file's readahead window, which is how far
    # apart the faults of a sequential mmap reader land.
    for kind, major, minor, ino, ra_pages in _RA.findall(text):
        dev = (int(major), int(minor))
        acc = per_dev.get(dev) or per_dev.setdefault(dev, _Acc())
        acc.ra(int(ino, 16), int(ra_pages), kind == "sync")
    for ts, kind, major, minor, ino, a, b in _ACCESS.findall(text):
        dev = (int(major), int(minor))
        acc = per_dev.get(dev) or per_dev.setdefault(dev, _Acc())
        start = int(a) >> 12
        if kind == "get_pages":
            end = int(b) >> 12 if b else start
            acc.reads += 1
            acc.pages += end - start + 1
        else:
            end = start
            acc.faults += 1
        acc.seen(float(ts))
        acc.stream(int(ino, 16), start, end)
    return {dev: acc.stats() for dev, acc in per_dev.items()}


class _Acc:
    """Accumulator for one device. Keeps a few open runs ("heads") per inode so that
    interleaved streams on one file (several readers) are still recognised as sequential."""

    def __init__(self) -> None:
        self.reads = self.faults = self.sync = self.asyn = 0
        self.seq = self.near = self.gaps_n = 0
        self.gap_sum = 0.0
        self.pages = 0
        self.first = self.last = math.nan  # timestamps of the first and last access
        self.heads: dict[int, list[list[int]]] = {}  # inode → [[next page, run start], ...]
        self.runs: list[int] = []  # lengths in pages of closed runs
        self.ra_pages: list[int] = []
        self.window: dict[int, int] = {}  # inode → largest readahead window seen (pages)

    def seen(self, ts: float) -> None:
        if math.isnan(self.first):
            self.first = ts
        self.last = ts

    def ra(self, ino: int, ra_pages: int, sync: bool) -> None:
        self.ra_pages.append(ra_pages)
        if sync:
            self.sync += 1
        else:
            self.asyn += 1
        if ra_pages > self.window.get(ino, 0):
            self.window[ino] = ra_pages

    def stream(self, ino: int, start: int, end: int) -> None:
        heads = self.heads.get(ino)
        if heads is None:
            self.heads[ino] = [[end + 1, start]]
            return
        best = heads[0]
        for h in heads[1:]:
            if abs(start - h[0]) < abs(start - best[0]):
                best = h
        gap = start - best[0]
        self.gaps_n += 1
        self.gap_sum += math.log2(1 + abs(gap))
        # mmap faults of a sequential stream land one readahead window apart (the window
        # is mapped at once), so a stream may skip up to two windows of its file. A fixed
        # large tolerance would not do: random readers with several faults per file would
        # then look sequential. "near" is the strict, readahead-blind version.
        tolerance = min(max(NEAR_GAP_PAGES, 2 * self.window.get(ino, 0)), STREAM_GAP_PAGES)
        if -1 <= gap <= tolerance:
            self.seq += 1
            if gap <= NEAR_GAP_PAGES:
                self.near += 1
            best[0] = max(best[0], end + 1)
            return
        heads.append([end + 1, start])
        if len(heads) > 8:
            old = heads.pop(0)
            self.runs.append(old[0] - old[1])

    def run_pages(self) -> float:
        """Page-weighted mean run length: the length of the run an accessed page belongs to.
        4 KiB random reads give 1, 16 KiB random reads 4, a sequential stream hundreds, and
        a mix is dominated by whichever moves more pages."""
        runs = self.runs + [h[0] - h[1] for hs in self.heads.values() for h in hs]
        total = sum(runs)
        return sum(r * r for r in runs) / total if total > 0 else math.nan

    def stats(self) -> TraceStats:
        n = self.reads + self.faults
        span = self.last - self.first if n > 1 else 0.0
        ra = sorted(self.ra_pages)
        g = self.gaps_n
        return TraceStats(
            reads=self.reads,
            faults=self.faults,
            sync_ra=self.sync,
            async_ra=self.asyn,
            rate=(n - 1) / span if span > 0 else math.nan,
            seq_frac=self.seq / g if g else math.nan,
            near_frac=self.near / g if g else math.nan,
            log_gap=self.gap_sum / g if g else math.nan,
            req_pages=self.pages / self.reads if self.reads else math.nan,
            files=len(self.heads),
            ra_pages=float(ra[len(ra) // 2]) if ra else math.nan,
            run_pages=self.run_pages(),
        )



def equal(a: dict[tuple[int, int], TraceStats], b: dict[tuple[int, int], TraceStats]) -> bool:
    """Same devices and same statistics, NaN equal to NaN."""
    def norm(s: TraceStats) -> tuple[object, ...]:
        return tuple("nan" if isinstance(x, float) and math.isnan(x) else x
                     for x in vars(s).values())
    return a.keys() == b.keys() and all(norm(a[k]) == norm(b[k]) for k in a)
