"""Sampling of page-cache tracepoints: the access pattern of each target device.

Why tracefs: request sizes and rates alone cannot tell sequential from random access
whatever ``read_ahead_kb`` is (at 4 KiB readahead a sequential stream looks like random
4 KiB reads). The events ``filemap/mm_filemap_get_pages`` (every read() request) and
``filemap/mm_filemap_fault`` (mmap faults) show the application's own file offsets, which
do not depend on readahead. ``readahead/page_cache_{sync,async}_ra`` show the readahead the
kernel actually did and the ``ra_pages`` each open file carries.

Why sampling: at 10^5 reads/s a permanent trace would cost more than the tuning gains. Each
tick enables the events for a short window; the per-CPU buffer is small and does not
overwrite, so the cost of one sample is bounded whatever the I/O rate. Between windows the
events are perf events switched off, which cost the traced workload nothing measurable
(:mod:`mltune.perf`; a tracefs instance is the fallback).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .errors import MltuneError
from .perf import PerfError, PerfSource, online_cpus
from .ringbuf import (
    DEV,
    FAULT,
    GET_PAGES,
    INDEX,
    INO,
    LAST_INDEX,
    RA_PAGES,
    SYNC_RA,
    Decoder,
    Event,
    EventFormat,
    decoders,
    parse_format,
)
from .sysfs import Root
from .tracefs import EVENTS, TRACEFS, TracefsSource, mount, private_formats, unmount

try:  # built by pip install from tuner/_fasttrace.c; optional: without it, Python decodes
    from . import _fasttrace as _native
    NATIVE: ModuleType | None = _native
except ImportError:
    NATIVE = None

log = logging.getLogger(__name__)

SOURCES = ("auto", "perf", "tracefs")
STREAM_GAP_PAGES = 1024  # 4 MiB: the largest readahead window mltune sets
NEAR_GAP_PAGES = 32  # fault-around maps 16 pages per fault
SPARSE_ACCESSES = 64  # fewer accesses than this in a window: record a longer one
SPARSE_FACTOR = 4
# The features are computed over the events of this many bytes of trace_pipe text: what the
# shipped model was trained on (see mltune.ringbuf).
TEXT_LIMIT = 16384
_ACCESSES = (GET_PAGES, FAULT)  # the application's own accesses; the others are readahead


def kernel_dev(major: int, minor: int) -> int:
    """dev_t as the kernel stores it in ``s_dev`` (MINORBITS = 20), used in event filters."""
    return (major << 20) | minor


@dataclass(frozen=True)
class TraceStats:
    """Access-pattern statistics of one device over one sampling window."""

    reads: int
    faults: int
    sync_ra: int
    async_ra: int
    rate: float  # application accesses per second (reads + faults)
    seq_frac: float  # accesses continuing a stream (forward gap <= STREAM_GAP_PAGES)
    near_frac: float  # accesses adjacent to the previous one (gap <= NEAR_GAP_PAGES)
    log_gap: float  # mean log2(1 + |page gap|) between consecutive accesses of a file
    req_pages: float  # mean pages per read() request
    files: int  # distinct inodes touched
    ra_pages: float  # median ra_pages of the open files that did readahead (NaN if none)
    run_pages: float = math.nan  # page-weighted mean length of sequential runs

    @property
    def accesses(self) -> int:
        return self.reads + self.faults


def summarize(events: Sequence[Event]) -> dict[tuple[int, int], TraceStats]:
    """Per-device statistics of decoded events (:func:`mltune.ringbuf.decode`), pure."""
    by_dev: dict[int, list[Event]] = {}
    ra_by_dev: dict[int, list[Event]] = {}
    for e in events:
        group = by_dev if e[1] in _ACCESSES else ra_by_dev
        dev = e[2][DEV]
        evs = group.get(dev)
        if evs is None:
            group[dev] = [e]
        else:
            evs.append(e)
    # Readahead events first: they give each file's readahead window, which is how far
    # apart the faults of a sequential mmap reader land. (A device's statistics come in the
    # order of its first readahead event, then of its first access: sample() keeps the
    # first of a disk's partitions on a tie.)
    per_dev = {dev: _Acc() for dev in ra_by_dev}
    for dev, ras in ra_by_dev.items():
        per_dev[dev].readahead(ras)
    for dev, accesses in by_dev.items():
        (per_dev.get(dev) or per_dev.setdefault(dev, _Acc())).stream(accesses)
    return {(dev >> 20, dev & 0xFFFFF): acc.stats() for dev, acc in per_dev.items()}


def perf_stats(source: PerfSource, limit: int, native: bool = True) \
        -> dict[tuple[int, int], TraceStats]:
    """:func:`summarize` of ``source``'s window (:meth:`PerfSource.events`), in one native
    pass (``mltune._fasttrace``) when it is built: decoding and summarizing in Python cost
    ~1 us per event, most of a tick. The Python path is the reference: the tests hold the
    two equal, floats included."""
    bufs = source.drain()
    if _native_for(source, native):
        return summarize_records(source, bufs, limit)
    return summarize(source.decode(bufs, limit))


def _native_for(source: PerfSource, native: bool) -> bool:
    """Whether ``source``'s records go through ``mltune._fasttrace`` (see
    :attr:`TraceSampler.decoding` for why not)."""
    return native and NATIVE is not None and source.layouts is not None


def summarize_records(source: PerfSource, bufs: Sequence[bytes], limit: int) \
        -> dict[tuple[int, int], TraceStats]:
    """``summarize(source.decode(bufs, limit))`` in ``mltune._fasttrace``, which must be
    built and take ``source``'s layouts (see :func:`perf_stats`)."""
    assert NATIVE is not None and source.layouts is not None
    devs, lost = NATIVE.summarize_records(bufs, source.layouts, limit)
    source.lost += lost
    return {(dev >> 20, dev & 0xFFFFF): _trace_stats(*counts) for dev, *counts in devs}


def _trace_stats(reads: int, faults: int, sync: int, asyn: int, seq: int, near: int,
                 gaps: int, gap_sum: float, pages: int, first: int | None, last: int | None,
                 files: int, ra_median: int | None, run_total: int, run_sq: int) -> TraceStats:
    """A device's statistics from its counts (:class:`_Acc`'s, or ``mltune._fasttrace``'s:
    one place for the ratios keeps the two paths' floats equal). ``first``/``last``: time
    stamps (ns) of the first and last access; ``run_total``/``run_sq``: sums of the run
    lengths and of their squares."""
    n = reads + faults
    # Seconds as trace_pipe prints them: microseconds, rounded (ns2usecs).
    span = ((last + 500) // 1000) / 1e6 - ((first + 500) // 1000) / 1e6 \
        if n > 1 and first is not None and last is not None else 0.0
    return TraceStats(
        reads=reads,
        faults=faults,
        sync_ra=sync,
        async_ra=asyn,
        rate=(n - 1) / span if span > 0 else math.nan,
        seq_frac=seq / gaps if gaps else math.nan,
        near_frac=near / gaps if gaps else math.nan,
        log_gap=gap_sum / gaps if gaps else math.nan,
        req_pages=pages / reads if reads else math.nan,
        files=files,
        ra_pages=float(ra_median) if ra_median is not None else math.nan,
        # Page-weighted mean run length: the length of the run an accessed page belongs to.
        # 4 KiB random reads give 1, 16 KiB random reads 4, a sequential stream hundreds,
        # and a mix is dominated by whichever moves more pages.
        run_pages=run_sq / run_total if run_total > 0 else math.nan,
    )


class _Acc:
    """Accumulator for one device. Keeps a few open runs ("heads") per inode so that
    interleaved streams on one file (several readers) are still recognised as sequential."""

    def __init__(self) -> None:
        self.reads = self.faults = self.sync = self.asyn = 0
        self.seq = self.near = self.gaps_n = 0
        self.gap_sum = 0.0
        self.pages = 0
        self.first: int | None = None  # time stamps (ns) of the first and last access
        self.last: int | None = None
        self.heads: dict[int, list[list[int]]] = {}  # inode → [[next page, run start], ...]
        self.runs: list[int] = []  # lengths in pages of closed runs
        self.ra_pages: list[int] = []
        self.window: dict[int, int] = {}  # inode → largest readahead window seen (pages)

    def readahead(self, events: Sequence[Event]) -> None:
        """Count the device's readahead events and keep each file's largest window. One
        loop over locals: a random mmap reader has about one per fault."""
        ra_pages, window = self.ra_pages, self.window
        sync = 0
        for _, kind, v, _ in events:
            pages = v[RA_PAGES]
            ra_pages.append(pages)
            if kind == SYNC_RA:
                sync += 1
            ino = v[INO]
            if pages > window.get(ino, 0):
                window[ino] = pages
        self.sync += sync
        self.asyn += len(events) - sync

    def stream(self, accesses: Sequence[Event]) -> None:
        """Follow the device's accesses in order. One loop over locals: this runs for every
        sampled event, and per-event method calls were most of its cost."""
        heads_of, window, runs, log2 = self.heads, self.window, self.runs, math.log2
        tolerance: dict[int, int] = {}
        reads = faults = pages = seq = near = gaps_n = 0
        gap_sum = 0.0
        for _, kind, v, _ in accesses:
            start = v[INDEX]
            if kind == GET_PAGES:
                end = v[LAST_INDEX]
                reads += 1
                pages += end - start + 1
            else:
                end = start
                faults += 1
            ino = v[INO]
            heads = heads_of.get(ino)
            if heads is None:
                heads_of[ino] = [[end + 1, start]]
                continue
            best = heads[0]
            if len(heads) > 1:
                for h in heads[1:]:
                    if abs(start - h[0]) < abs(start - best[0]):
                        best = h
            gap = start - best[0]
            gaps_n += 1
            if gap:  # log2(1) adds nothing
                gap_sum += log2(1 + abs(gap))
            # mmap faults of a sequential stream land one readahead window apart (the window
            # is mapped at once), so a stream may skip up to two windows of its file. A fixed
            # large tolerance would not do: random readers with several faults per file would
            # then look sequential. "near" is the strict, readahead-blind version. The
            # tolerance is never below NEAR_GAP_PAGES, so near gaps need no window.
            if -1 <= gap <= NEAR_GAP_PAGES:
                seq += 1
                near += 1
                if end >= best[0]:
                    best[0] = end + 1
                continue
            tol = tolerance.get(ino)
            if tol is None:
                tol = tolerance[ino] = min(max(NEAR_GAP_PAGES, 2 * window.get(ino, 0)),
                                           STREAM_GAP_PAGES)
            if -1 <= gap <= tol:
                seq += 1
                if end >= best[0]:
                    best[0] = end + 1
                continue
            heads.append([end + 1, start])
            if len(heads) > 8:
                old = heads.pop(0)
                runs.append(old[0] - old[1])
        if accesses:
            self.first, self.last = accesses[0][0], accesses[-1][0]
        self.reads, self.faults, self.pages = reads, faults, pages
        self.seq, self.near, self.gaps_n, self.gap_sum = seq, near, gaps_n, gap_sum

    def stats(self) -> TraceStats:
        runs = self.runs + [h[0] - h[1] for hs in self.heads.values() for h in hs]
        ra = sorted(self.ra_pages)
        return _trace_stats(self.reads, self.faults, self.sync, self.asyn, self.seq, self.near,
                            self.gaps_n, self.gap_sum, self.pages, self.first, self.last,
                            len(self.heads), ra[len(ra) // 2] if ra else None, sum(runs),
                            sum(r * r for r in runs))


class TraceSampler:
    """Samples the page-cache events of some devices, one short window per tick.

    ``open()`` reads the events' formats and sets up the events as perf events
    (:mod:`mltune.perf`), or, where those cannot be used, as a private tracefs instance
    (:mod:`mltune.tracefs`), both filtered in the kernel on the target devices. ``source``
    forces one ("perf" or "tracefs"); perf needs the running kernel, so under a ``--root``
    other than ``/`` the instance is used. Where tracefs is not mounted, perf reads the
    formats from a tracefs mounted in a child's private mount namespace: the host's mounts
    never change. The instance needs tracefs mounted on the host: mounted if needed, and
    unmounted by ``close()``.
    """

    def __init__(self, root: Root, devices: dict[str, list[tuple[int, int]]],
                 window_s: float = 0.05, buffer_kb: int = 8,
                 read_limit: int = TEXT_LIMIT, source: str = "auto",
                 native: bool = True) -> None:
        if source not in SOURCES:
            raise ValueError(f"trace source {source!r}; valid: {', '.join(SOURCES)}")
        self.root = root
        self.devices = devices
        self.window_s = window_s
        self.buffer_kb = buffer_kb
        self.read_limit = read_limit  # bytes of trace_pipe text the features cover
        self.want = source
        self.native = native  # perf records through mltune._fasttrace when it is built
        self.source: PerfSource | TracefsSource | None = None
        self.why_not_perf = ""  # why the instance is used instead of perf events
        self._mounted = False
        self._by_dev = {d: name for name, nums in devices.items() for d in nums}
        self.windows = 0  # windows recorded by the last sample()
        self.slept = 0.0  # wall time the last sample() slept: not the agent's cost

    @property
    def instance(self) -> str | None:
        """The tracefs instance's path under the root, when that is the source."""
        return self.source.instance if isinstance(self.source, TracefsSource) else None

    @property
    def decoding(self) -> str:
        """How the window's records become statistics, for the log: "native", or "Python"
        and why."""
        if self.source is None:
            return "none (not open)"
        if not isinstance(self.source, PerfSource):
            return "Python (tracefs pages)"
        if not self.native:
            return "Python (native decoding switched off)"
        if NATIVE is None:
            return "Python (mltune._fasttrace not built: no C compiler at install?)"
        if not _native_for(self.source, self.native):
            return "Python (event layout beyond what mltune._fasttrace reads)"
        return "native"

    def available(self) -> tuple[bool, str]:
        if not self.root.exists(TRACEFS):
            return False, f"/{TRACEFS} does not exist (kernel without tracefs)"
        if not self.root.exists(f"{TRACEFS}/events") and os.geteuid() != 0:
            return False, f"tracefs not mounted at /{TRACEFS} and not root to mount it"
        return True, ""

    def open(self) -> None:
        """Set up the source; on failure, undo what was done (mount, instance, fds)."""
        try:
            self._setup()
        except BaseException:
            try:
                self.close()
            except MltuneError as err:  # the setup error is the one to report
                log.warning("tracefs instance not fully removed: %s", err)
            raise

    def _setup(self) -> None:
        filt = " || ".join(f"s_dev == {kernel_dev(*d)}"
                           for nums in self.devices.values() for d in nums)
        filt = filt or "s_dev == 0"  # no device: nothing ("0" would clear the filter)
        tried = False  # perf events, with formats read in a private mount
        if self.want != "tracefs" and self._running_kernel() \
                and not self.root.exists(f"{TRACEFS}/events"):
            # Perf events need only the formats: read them without mounting on the host.
            try:
                formats = [parse_format(t) for t in private_formats(EVENTS)]
            except MltuneError as err:
                log.info("%s; mounting tracefs to read them", err)
            else:
                tried = True
                self.source = self._perf(formats, decoders(formats), filt)
                if self.source is not None:
                    return
        self._mounted = mount(self.root)
        for ev in EVENTS:
            if not self.root.exists(f"{TRACEFS}/events/{ev}"):
                raise MltuneError(f"tracepoint {ev} missing in this kernel")
        formats = [parse_format(self.root.read(f"{TRACEFS}/events/{ev}/format"))
                   for ev in EVENTS]
        table = decoders(formats)
        if self.want != "tracefs" and not tried:
            self.source = self._perf(formats, table, filt)
        if self.source is None:
            self.source = TracefsSource(self.root, table, filt, self.buffer_kb)
            self.source.open()
        elif self._mounted:  # perf events need tracefs no more
            self._mounted = False
            unmount(self.root)

    def _running_kernel(self) -> bool:
        return self.root.root.resolve() == Path("/")

    def _perf(self, formats: list[EventFormat], table: dict[int, Decoder],
              filt: str) -> PerfSource | None:
        try:
            if not self._running_kernel():
                raise PerfError(f"--root {self.root.root} is not the running kernel's")
            cpus = online_cpus(self.root.read("sys/devices/system/cpu/online"))
            source = PerfSource(formats, table, filt, cpus)
            source.open()
            return source
        except MltuneError as err:  # PerfError, or no list of online CPUs
            if self.want == "perf":
                raise
            self.why_not_perf = str(err)
            log.info("perf events unavailable (%s); sampling through a tracefs instance", err)
            return None

    def sample(self) -> dict[str, TraceStats]:
        """Record one window; if no target was accessed in it, record one more. Workloads
        pause between requests (fio between its jobs, servers between clients), and one
        empty window should not read as "idle"."""
        self.slept = 0.0
        out = self._stats(self._record(self.window_s))
        self.windows = 1
        # Counted on the statistics (a target's busiest device), not on the events first:
        # one pass over the events less when the window was busy.
        if sum(s.accesses for s in out.values()) < SPARSE_ACCESSES:
            # Slow random readers (1 k faults/s spread over many files) show one access per
            # file in a short window, which says nothing about their pattern: look longer.
            out = self._stats(self._record(self.window_s * SPARSE_FACTOR))
            self.windows = 1 + SPARSE_FACTOR
        return out

    def _stats(self, by_dev: dict[tuple[int, int], TraceStats]) -> dict[str, TraceStats]:
        out: dict[str, TraceStats] = {}
        for d, s in by_dev.items():
            name = self._by_dev.get(d)
            # A disk and its partitions: keep the busiest filesystem of the disk.
            if name is not None and (name not in out or s.accesses > out[name].accesses):
                out[name] = s
        return out

    def _record(self, seconds: float) -> dict[tuple[int, int], TraceStats]:
        """Record for ``seconds``, stop, drain: the window's statistics per device."""
        source = self.source
        if source is None:
            raise MltuneError("trace sampler used before open()")
        source.switch(True)
        t0 = time.perf_counter()
        source.wait(seconds)
        self.slept += time.perf_counter() - t0
        source.switch(False)
        if isinstance(source, PerfSource):
            return perf_stats(source, self.read_limit, self.native)
        return summarize(source.events(self.read_limit))

    def close(self) -> None:
        source, self.source = self.source, None
        try:
            if source is not None:
                source.close()
        finally:
            if self._mounted:
                self._mounted = False
                unmount(self.root)
