"""Sampling of page-cache tracepoints through a private tracefs instance.

Why tracefs: request sizes and rates alone cannot tell sequential from random access
whatever ``read_ahead_kb`` is (at 4 KiB readahead a sequential stream looks like random
4 KiB reads). The events ``filemap/mm_filemap_get_pages`` (every read() request) and
``filemap/mm_filemap_fault`` (mmap faults) show the application's own file offsets, which
do not depend on readahead. ``readahead/page_cache_{sync,async}_ra`` show the readahead the
kernel actually did and the ``ra_pages`` each open file carries.

Why sampling: at 10^5 reads/s a permanent trace would cost more than the tuning gains. Each
tick enables the instance for a short window; the per-CPU ring buffer is small and does not
overwrite, so the cost of one sample is bounded whatever the I/O rate.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import MltuneError
from .sysfs import Root, translate

EVENTS = (
    "filemap/mm_filemap_get_pages",
    "filemap/mm_filemap_fault",
    "readahead/page_cache_sync_ra",
    "readahead/page_cache_async_ra",
)
TRACEFS = "sys/kernel/tracing"
INSTANCE_PREFIX = "mltune-"
STREAM_GAP_PAGES = 1024  # 4 MiB: the largest readahead window mltune sets
NEAR_GAP_PAGES = 32  # fault-around maps 16 pages per fault
SPARSE_ACCESSES = 64  # fewer accesses than this in a window: record a longer one
SPARSE_FACTOR = 4

# "<comm>-<pid> [cpu] flags 167.996149: mm_filemap_get_pages: dev=7:0 ino=b ofs=1507328-1511423"
# One regex per event family, run over the whole buffer at once: per-line Python work is
# what makes parsing cost, and the tick budget is about a millisecond.
_ACCESS = re.compile(
    r" (\d+\.\d+): mm_filemap_(get_pages|fault): dev=(\d+):(\d+) ino=([0-9a-f]+) "
    r"ofs=(\d+)(?:-(\d+))?")
_RA = re.compile(
    r": page_cache_(sync|async)_ra: dev=(\d+):(\d+) ino=([0-9a-f]+) index=\d+ req_count=\d+ "
    r"order=\d+ size=\d+ async_size=\d+ ra_pages=(\d+)")


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


class TraceSampler:
    """A private tracefs instance sampling the page-cache events of some devices.

    ``open()`` mounts tracefs if it is not mounted (and ``close()`` unmounts only what it
    mounted), removes instances left by dead mltune processes, creates its own instance
    with a kernel-side filter on the target devices and a small non-overwriting buffer.
    """

    def __init__(self, root: Root, devices: dict[str, list[tuple[int, int]]],
                 window_s: float = 0.05, buffer_kb: int = 8,
                 read_limit: int = 16384) -> None:
        self.root = root
        self.devices = devices
        self.window_s = window_s
        self.buffer_kb = buffer_kb
        self.read_limit = read_limit
        self.instance = f"{TRACEFS}/instances/{INSTANCE_PREFIX}{os.getpid()}"
        self._mounted = False
        self._open = False
        self.windows = 0  # windows recorded by the last sample()
        self.slept = 0.0  # wall time the last sample() slept: not the agent's cost

    def available(self) -> tuple[bool, str]:
        if not self.root.exists(TRACEFS):
            return False, f"/{TRACEFS} does not exist (kernel without tracefs)"
        if not self.root.exists(f"{TRACEFS}/events") and os.geteuid() != 0:
            return False, f"tracefs not mounted at /{TRACEFS} and not root to mount it"
        return True, ""

    def open(self) -> None:
        if not self.root.exists(f"{TRACEFS}/events"):
            self._mount()
        for ev in EVENTS:
            if not self.root.exists(f"{TRACEFS}/events/{ev}"):
                raise MltuneError(f"tracepoint {ev} missing in this kernel")
        remove_stale_instances(self.root)
        _dir_op(os.makedirs, self.root.path(self.instance), exist_ok=True)
        self._open = True
        self.root.write(f"{self.instance}/tracing_on", "0")
        self.root.write(f"{self.instance}/buffer_size_kb", str(self.buffer_kb))
        self.root.write(f"{self.instance}/options/overwrite", "0")
        filt = " || ".join(f"s_dev == {kernel_dev(*d)}"
                           for nums in self.devices.values() for d in nums)
        for ev in EVENTS:
            self.root.write(f"{self.instance}/events/{ev}/filter", filt or "0")
            self.root.write(f"{self.instance}/events/{ev}/enable", "1")

    def sample(self) -> dict[str, TraceStats]:
        """Record one window; if no target was accessed in it, record one more. Workloads
        pause between requests (fio between its jobs, servers between clients), and one
        empty window should not read as "idle"."""
        self.slept = 0.0
        out = self._window(self.window_s)
        self.windows = 1
        if sum(s.accesses for s in out.values()) < SPARSE_ACCESSES:
            # Slow random readers (1 k faults/s spread over many files) show one access per
            # file in a short window, which says nothing about their pattern: look longer.
            out = self._window(self.window_s * SPARSE_FACTOR)
            self.windows = 1 + SPARSE_FACTOR
        return out

    def _window(self, seconds: float) -> dict[str, TraceStats]:
        """Record for ``seconds``, stop, drain. Returns stats per device name."""
        self.root.write(f"{self.instance}/tracing_on", "1")
        t0 = time.perf_counter()
        time.sleep(seconds)
        self.slept += time.perf_counter() - t0
        self.root.write(f"{self.instance}/tracing_on", "0")
        text = self._drain()
        # A bounded read can end mid-line: keep whole lines only.
        stats = summarize(text[: text.rfind("\n") + 1])
        by_dev = {d: name for name, nums in self.devices.items() for d in nums}
        out: dict[str, TraceStats] = {}
        for d, s in stats.items():
            if d in by_dev:
                # A disk and its partitions: keep the busiest filesystem of the disk.
                name = by_dev[d]
                if name not in out or s.accesses > out[name].accesses:
                    out[name] = s
        return out

    def _drain(self) -> str:
        """Consume the buffer through ``trace_pipe``; return at most ``read_limit`` of it.

        Clearing with ``echo > trace`` costs ~20 ms per call on this kernel (it waits for
        every CPU); a consuming read leaves the buffer empty for the next window at the cost
        of formatting what it holds, which the small buffer bounds.
        """
        path = self.root.path(f"{self.instance}/trace_pipe")
        chunks: list[bytes] = []
        kept = 0
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as err:
            raise translate(err, path) from err
        try:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    break  # empty
                if not chunk:
                    break
                if kept < self.read_limit:
                    chunks.append(chunk)
                    kept += len(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks)[: self.read_limit].decode("ascii", "replace")

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self.root.write(f"{self.instance}/tracing_on", "0")
                for ev in EVENTS:
                    self.root.write(f"{self.instance}/events/{ev}/enable", "0")
            finally:
                _dir_op(os.rmdir, self.root.path(self.instance))
        if self._mounted:
            self._mounted = False
            subprocess.run(["umount", str(self.root.path(TRACEFS))], check=False)

    def _mount(self) -> None:
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", str(self.root.path(TRACEFS))],
                              capture_output=True, check=False)
        if done.returncode != 0 or not self.root.exists(f"{TRACEFS}/events"):
            raise MltuneError(f"cannot mount tracefs at /{TRACEFS}")
        self._mounted = True


def remove_stale_instances(root: Root) -> list[str]:
    """Remove tracefs instances left by mltune processes that died (kill -9, OOM). rmdir of
    an instance also disables its events, so nothing keeps tracing for nobody."""
    base = f"{TRACEFS}/instances"
    if not root.exists(base):
        return []
    removed = []
    for name in root.listdir(base):
        pid = name[len(INSTANCE_PREFIX):]
        if name.startswith(INSTANCE_PREFIX) and pid.isdigit() \
                and not os.path.exists(f"/proc/{pid}"):
            _dir_op(os.rmdir, root.path(f"{base}/{name}"))
            removed.append(name)
    return removed


def _dir_op(op: Callable[..., None], path: Path, **kw: bool) -> None:
    """mkdir/rmdir of a tracefs instance, with errno turned into a domain error."""
    try:
        op(path, **kw)
    except OSError as err:
        raise translate(err, path) from err
