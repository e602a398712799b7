"""Readahead driver: ``/sys/block/<dev>/queue/read_ahead_kb``.

Kernel facts this driver is built on (measured on 6.18, see README):
- a file copies ``read_ahead_kb`` into its readahead state at open() (``file_ra_state_init``),
  so a new value reaches files opened after the write, not files already open;
- the kernel stores the value in pages, so a write is rounded down to a multiple of 4 KiB;
- request sizes cannot tell sequential from random access (at 4 KiB readahead a sequential
  stream is a run of 4 KiB requests), hence the tracefs features of :mod:`mltune.tracing`.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import reprlib
import time
from collections.abc import Collection, Mapping, Sequence

from mltune.driver import Availability, Change, Observation, Target
from mltune.errors import DeviceGone, MltuneError, Unparsable, WriteMismatch
from mltune.kept import KeptAttr, KeptFile, read_once
from mltune.procfs import DiskStat, find_counters, parse_block_stat, parse_pressure, parse_u64
from mltune.sysfs import Root
from mltune.tracing import STREAM_GAP_PAGES, TraceSampler, TraceStats

log = logging.getLogger(__name__)

CANDIDATES = (4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
DEFAULT_EXCLUDE = ("zram*", "ram*")

# Order matters: it is the model's input order (checked against the model metadata).
FEATURES: tuple[str, ...] = (
    "ra_kb_log2",
    "rd_iops", "rd_mbps", "rd_req_kb", "rd_merge_frac", "util",
    "majflt_s", "pgpgin_mbs", "refault_s",
    "psi_io_some", "psi_mem_some", "mem_avail_frac",
    "tr_rate_log2", "tr_fault_frac", "tr_seq_frac", "tr_near_frac", "tr_log_gap",
    "tr_req_pages", "tr_files", "tr_async_frac", "tr_ra_pages_log2", "tr_run_pages_log2",
    "psi_mem_full", "psi_io_full",  # for the pressure guard (policies), not a model input
)
TRACE_FEATURES = tuple(f for f in FEATURES if f.startswith("tr_"))
# What the model sees: the current value, the request size and the access-pattern features.
# System-wide /proc figures (PSI, vmstat, meminfo, device throughput) are observed and
# audited, but as model inputs they lowered held-out accuracy on unseen access patterns
# from 0.86 to 0.79 (leave-one-pattern-out, README): they identify the training runs
# rather than the pattern.
# tr_async_frac and tr_ra_pages_log2 are audited, not model inputs: the files' ra_pages is
# the knob itself (ra_kb_log2) for every file opened since it was set, and both are missing
# whenever the sampled window caught no readahead event (most ticks of a stream at >= 1024),
# so the model's scores flipped with them tick to tick: on a stream at 4096, 1024 scored
# above 4096 in those ticks and was written (measured 0.48x). Without them: held out 0.870
# (0.864 with); bench/live_replay.py on the stored logs up to -v13, 0.937 (0.927).
AUDIT_ONLY = ("tr_async_frac", "tr_ra_pages_log2")
MODEL_FEATURES: tuple[str, ...] = (
    "ra_kb_log2", "rd_req_kb", *(f for f in TRACE_FEATURES if f not in AUDIT_ONLY))
NAN = math.nan
# changed(): a target's reads moving by WATCH_JUMP in one look, or by WATCH_FACTOR over the
# last two, is a new workload. The phases this driver tells apart mostly differ by 5-100x
# in reads/s or KiB/s (random faults at a large readahead vs a small one, a stream vs
# random reads). Random readers vary < 1.3x between 0.25 s looks, but a stream at a large
# readahead reads in bursts: 700 and 5900 reads/s in consecutive looks around 2000.
WATCH_JUMP = 4.0
WATCH_FACTOR = 2.0
WATCH_FLOOR_IOPS = 20.0
WATCH_FLOOR_KIBS = 1024.0
# The few /proc/vmstat and /proc/meminfo counters the features use (procfs.find_counters):
# building the whole ~230-entry dict every tick cost more than reading the files.
_VMSTAT = (b"pgmajfault", b"pgpgin", b"workingset_refault_file")
_MEMINFO = (b"MemTotal:", b"MemAvailable:")
# mem_avail_frac, a level the audit shows (not a model input), is read at most this often:
# /proc/meminfo is the costliest of the /proc files read (the kernel sums per-CPU counters
# for many of its ~55 lines): ~5 us in a tight loop here, ~48 us at a tick, caches cold.
MEMINFO_EVERY_S = 5.0
# /proc/pressure/* (the pressure guard's avg10) and /proc/vmstat (audit-only rates) are read
# at most this often. The kernel recomputes the PSI averages every 2 s (PSI_FREQ), so a
# read in between returns the same figures; each pressure file cost ~56 us at a tick here
# and /proc/vmstat ~100 us (the kernel sums per-CPU counters for its ~230 lines): 0.15-0.35
# ms on the ticks that read them, every other tick at 2 s. At 4 s one tick in four reads
# them; avg10 is a 10 s average, so the pressure guard sees it at most 2 s later than it
# would at 2 s. The vmstat rates are then over the last 4 s or more.
SYSTEM_EVERY_S = 4.0
# told_random(): at least this many page faults in a window, each in a file of its own.
RANDOM_FAULT_FILES = 8
# A tick after a write takes its disk features over its sampled window (observe()) when
# the window saw at least this many reads; below it, a mean request size is noise.
WINDOW_MIN_READS = 20


class ReadaheadDriver:
    name = "readahead"
    knob = "read_ahead_kb"
    features = FEATURES
    model_features = MODEL_FEATURES
    trace_features = TRACE_FEATURES
    # mltune.train adds each row with its mean request size times these too. The training
    # runs put mmap random reads at 32 KiB at 30.2-31.4 KiB and 16 KiB random reads at
    # 31.3-31.6, and the model split them there, not on their stream fractions (0 and 1):
    # on the benchmark host a week later mmap random reads at 32 read 31.9 KiB requests,
    # the model scored 16 > 32 > 4 within 5 % for two ticks (4 read 1.3x 16), and the
    # phase settled at 2.5 s (shuffled mix -v27). Trained with these copies it puts 4 first
    # there by 19-22 %. Held out 0.851 (0.858 without); on the stored audit logs
    # (bench/live_replay.py) 0.925 either way, moves to a value measured > 10 % worse 21
    # (32 without), > 10 % better 81 (86).
    jitter = {"rd_req_kb": (0.9, 0.95, 1.05, 1.1)}
    # The trace's access rate moves with the host's disk, not only with the pattern: the
    # benchmark's mmap random reads at 16 faulted 2^10.7-2^11.4 times a second where the
    # training runs at 16 did 2^13.0, and there the model put 4 over 16 by 1.5-9.9 % (under
    # min_gain; 16 was held for a whole phase, seed-13 mix -v35) where its training rows
    # say 11 %. Trained with copies at half and twice the rate it says 7.6-16 % on those
    # ticks (python bench/live_replay.py: the same geomean, 0.920).
    shift = {"tr_rate_log2": (-1.0, 1.0)}

    @staticmethod
    def derive(features: dict[str, float]) -> dict[str, float]:
        """Features inferred from the others (:func:`told_random`), for mltune.train."""
        return told_random(features)

    def __init__(self, root: Root, devices: Sequence[str] = (), include: Sequence[str] = ("*",),
                 exclude: Sequence[str] = DEFAULT_EXCLUDE, trace: bool = True,
                 window_s: float = 0.05, trace_source: str = "auto") -> None:
        self.root = root
        self.devices = tuple(devices)
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.trace = trace
        self.window_s = window_s
        self.trace_source = trace_source  # see mltune.tracing.TraceSampler
        self.traced_by = ""  # the sampler's source once open: "perf" or "tracefs"
        self._sampler: TraceSampler | None = None
        self._sampled: tuple[str, ...] = ()
        self._prev: tuple[float, dict[str, DiskStat]] | None = None
        self._wrote: set[str] = set()  # targets written since the last observe()
        # (monotonic time read, the features, the vmstat counters) of the last read of
        # /proc/vmstat and /proc/pressure/*: see SYSTEM_EVERY_S.
        self._system: tuple[float, dict[str, float], dict[str, int]] | None = None
        # changed(): the last look at the disks' counters, and each target's rates at the
        # first look after the last tick.
        self._watch_at: tuple[float, dict[str, DiskStat]] | None = None
        self._watch_ref: dict[str, tuple[float, float]] = {}
        self._watch_last: dict[str, tuple[float, float]] = {}  # the previous look's rates
        self._observed: dict[str, tuple[float, float]] = {}  # reads/s, KiB/s at the last tick
        self.trace_note = "" if trace else "tracefs disabled by configuration"
        # Opened at the first observation, kept until close(): see mltune.kept.
        self._proc = {name: KeptFile(root, f"proc/{name}", missing_ok=name.startswith("pressure"))
                      for name in ("vmstat", "meminfo", "pressure/io", "pressure/memory")}
        # sysfs path → kept descriptor: each target's knob and its counters (``stat``), read
        # every tick; the counters also at each look between ticks.
        self._attrs: dict[str, KeptAttr] = {}
        self._mem_avail: tuple[float, float] | None = None  # (monotonic time read, fraction)

    # -- discovery ---------------------------------------------------------------------
    def _all_devices(self) -> list[str]:
        if not self.root.exists("sys/block"):
            return []
        return [d for d in self.root.listdir("sys/block")
                if self.root.exists(f"sys/block/{d}/queue/read_ahead_kb")]

    def _in_use(self, dev: str) -> bool:
        # An unbound loop device has size 0 and no backing file: nothing to tune.
        return self.root.read(f"sys/block/{dev}/size", fallback="0") not in ("", "0")

    def availability(self) -> Availability:
        names = self._all_devices()
        if not names:
            return Availability(False, "no block device with queue/read_ahead_kb")
        try:
            targets = tuple(t.name for t in self.discover())
        except MltuneError as err:
            return Availability(False, str(err))
        return Availability(True, "", targets)

    def discover(self) -> list[Target]:
        present = self._all_devices()
        if self.devices:
            unknown = [d for d in self.devices if d not in present]
            if unknown:
                raise MltuneError(f"unknown device {', '.join(unknown)}; "
                                  f"block devices with read_ahead_kb: {', '.join(present)}")
            names = list(self.devices)
        else:
            names = [d for d in present
                     if any(fnmatch.fnmatch(d, p) for p in self.include)
                     and not any(fnmatch.fnmatch(d, p) for p in self.exclude)
                     and self._in_use(d)]
        return [Target(self.name, d, f"sys/block/{d}/queue/read_ahead_kb", f"sys/block/{d}")
                for d in names]

    # -- observation -------------------------------------------------------------------
    def observe(self, targets: Sequence[Target]) -> dict[str, Observation]:
        now = time.monotonic()
        disks = self._disk_stats(targets)
        system = self._system_features(now)
        traced = self._sample([t.name for t in targets])
        prev = self._prev
        self._prev = (now, disks)
        # A target written since the last tick: its disk counters over the interval mostly
        # count the old value's reads (files opened before the write keep it until they
        # are reopened, and requests in flight complete after it). Mmap random reads 0.56 s
        # after 2560 -> 16 showed 222 KiB requests where 16 KiB ones were being issued, and
        # 16 was kept over 4 for another tick; 0.55 s later they were 15.8 KiB and 4 was
        # written (shuffled mix -v26). In 33 of the 36 stored mmap-rand phases that wrote
        # (-v20 to -v26) the tick after the first write saw requests over twice the new
        # value, and 16 kept it a tick longer. The window just sampled is the newest view.
        fresh: dict[str, tuple[DiskStat, DiskStat, float]] = {}
        if self._wrote:
            later = self._disk_stats([t for t in targets if t.name in self._wrote])
            dt = time.monotonic() - now
            for name, stat in later.items():
                if name in disks and stat.reads - disks[name].reads >= WINDOW_MIN_READS:
                    fresh[name] = (stat, disks[name], dt)
            self._wrote = set()
        out = {}
        for t in targets:
            if t.name not in disks:
                continue  # removed device or garbled counters: the loop notices and says
            try:
                ra_kb = self._current_kept(t)
            except Unparsable:
                continue  # a garbled knob blinds this target only; the loop reports it
            feats = dict(system)
            feats["ra_kb_log2"] = math.log2(max(ra_kb, 1))
            if t.name in fresh:
                feats.update(_disk_features(*fresh[t.name]))
            else:
                feats.update(_disk_features(disks[t.name],
                                            prev[1].get(t.name) if prev else None,
                                            now - prev[0] if prev else 0.0))
            if not math.isnan(feats["rd_iops"]):
                self._observed[t.name] = (feats["rd_iops"], feats["rd_mbps"] * 1e6 / 1024)
            stats = traced.get(t.name) if traced is not None else None
            feats.update(_trace_features(stats) if traced is not None
                         else dict.fromkeys(TRACE_FEATURES, NAN))
            told_random(feats)
            source = self.traced_by if traced is not None else "proc"
            window = self._sampler.slept if self._sampler else 0.0
            reads = feats["rd_iops"]
            seen = bool(stats and stats.accesses)
            active = (not math.isnan(reads) and reads > 0) or seen
            out[t.name] = Observation(t.name, time.time(), feats, source, window, active, ra_kb,
                                      blind=active and traced is not None and not seen)
        return out

    def _system_features(self, now: float) -> dict[str, float]:
        if self._system is None or now - self._system[0] >= SYSTEM_EVERY_S:
            vm = find_counters(self._proc["vmstat"].read(), _VMSTAT)
            self._system = (now, self._read_system(now, vm), vm)
        return {**self._system[1], "mem_avail_frac": self._mem_avail_frac(now)}

    def _read_system(self, now: float, vm: dict[str, int]) -> dict[str, float]:
        feats: dict[str, float] = dict.fromkeys(("majflt_s", "pgpgin_mbs", "refault_s"), NAN)
        if self._system is not None:
            dt = max(now - self._system[0], 1e-3)
            old = self._system[2]
            feats["majflt_s"] = (vm.get("pgmajfault", 0) - old.get("pgmajfault", 0)) / dt
            feats["pgpgin_mbs"] = (vm.get("pgpgin", 0) - old.get("pgpgin", 0)) / 1024 / dt
            refault = "workingset_refault_file"
            feats["refault_s"] = (vm.get(refault, 0) - old.get(refault, 0)) / dt
        io = parse_pressure(self._proc["pressure/io"].read().decode("ascii", "replace"))
        mem = parse_pressure(self._proc["pressure/memory"].read().decode("ascii", "replace"))
        feats["psi_io_some"] = io.get("some_avg10", NAN)
        feats["psi_mem_some"] = mem.get("some_avg10", NAN)
        feats["psi_io_full"] = io.get("full_avg10", NAN)
        feats["psi_mem_full"] = mem.get("full_avg10", NAN)
        return feats

    def _mem_avail_frac(self, now: float) -> float:
        if self._mem_avail is None or now - self._mem_avail[0] >= MEMINFO_EVERY_S:
            meminfo = find_counters(self._proc["meminfo"].read(), _MEMINFO, spaces=True,
                                    unit=b" kB")
            total = meminfo.get("MemTotal", 0)
            self._mem_avail = (now, meminfo.get("MemAvailable", 0) / total if total else NAN)
        return self._mem_avail[1]

    def _sample(self, names: list[str]) -> dict[str, TraceStats] | None:
        """Trace statistics per device, or None when tracefs cannot be used (then the
        access-pattern features are missing and the model falls back on /proc ones)."""
        if not self.trace:
            return None
        try:
            if self._sampler is None or tuple(names) != self._sampled:
                self._close_sampler()
                devs = {n: self._devnum(n) for n in names}
                sampler = TraceSampler(self.root, devs, self.window_s, source=self.trace_source)
                ok, why = sampler.available()
                if not ok:
                    raise MltuneError(why)
                sampler.open()
                self._sampler, self._sampled = sampler, tuple(names)
                via = sampler.source.name if sampler.source else ""
                if via != self.traced_by:
                    self.traced_by = via
                    log.info("access patterns of %s from %s; decoding: %s", ", ".join(names),
                             "perf events" if via == "perf" else
                             f"a tracefs instance ({sampler.why_not_perf or 'configured'})",
                             sampler.decoding)
            return self._sampler.sample()
        except MltuneError as err:
            self.trace = False
            self.trace_note = f"tracefs unavailable ({err}); using /proc features only"
            log.warning("%s", self.trace_note)
            self._close_sampler()
            return None

    def _devnum(self, dev: str) -> list[tuple[int, int]]:
        """major:minor of the disk and of its partitions (filesystems live on those)."""
        base = f"sys/block/{dev}"
        nums = []
        for sub in ["", *[p for p in self.root.listdir(base) if p.startswith(dev)]]:
            text = self.root.read(f"{base}/{sub}/dev" if sub else f"{base}/dev", fallback="",
                                  owner=base)
            # 5000 digits would make int() raise: parse_u64 takes what the kernel prints.
            left, _, right = text.partition(":")
            major, minor = parse_u64(left), parse_u64(right)
            if major is not None and minor is not None:
                nums.append((major, minor))
        return nums

    def _close_sampler(self) -> None:
        if self._sampler is not None:
            sampler, self._sampler = self._sampler, None
            try:
                sampler.close()
            except MltuneError as err:
                log.warning("tracefs instance not fully removed: %s", err)

    # -- between ticks -----------------------------------------------------------------
    def changed(self, targets: Sequence[Target], reset: bool = False,
                wrote: Collection[str] = ()) -> str | None:
        """A cheap look between ticks (each target's ``stat``, ~0.03 ms): why the next
        tick should not wait, if a target's reads moved by WATCH_JUMP in requests/s or KiB/s
        in one look, or by WATCH_FACTOR on average over the last two. A phase change waiting
        for the next tick runs up to a whole interval at a value 10-50x off.

        ``reset`` (right after a tick): the reference becomes the rates the tick observed,
        so that a change between the tick and the first look counts too; for the targets
        the tick wrote (``wrote``), whose rates move because of that write, it is the first
        look after the tick instead."""
        now = time.monotonic()
        disks = self._disk_stats(targets)
        if reset:
            self._watch_ref = {n: r for n, r in self._observed.items() if n not in wrote}
            self._watch_last = {}
        prev, self._watch_at = self._watch_at, (now, disks)
        if reset or prev is None:
            return None
        dt = now - prev[0]
        if dt <= 0:
            return None
        for t in targets:
            a, b = prev[1].get(t.name), disks.get(t.name)
            if a is None or b is None:
                continue
            rates = ((b.reads - a.reads) / dt, (b.sectors_read - a.sectors_read) / 2 / dt)
            ref = self._watch_ref.setdefault(t.name, rates)
            last = self._watch_last.get(t.name)
            self._watch_last[t.name] = rates
            why = moved(ref, rates, WATCH_JUMP)
            if not why and last is not None:
                why = moved(ref, ((last[0] + rates[0]) / 2, (last[1] + rates[1]) / 2),
                            WATCH_FACTOR, "over 2 looks")
            if why:
                return f"{t.name}: {why}"
        return None

    # -- values ------------------------------------------------------------------------
    def current(self, target: Target) -> int:
        return _knob_value(target, read_once(self.root, target.path, owner=target.owner))

    def _current_kept(self, target: Target) -> int:
        """:meth:`current` through a kept descriptor (:class:`mltune.kept.KeptAttr`)."""
        return _knob_value(target, self._attr(target.path, target.owner).read())

    def _disk_stats(self, targets: Sequence[Target]) -> dict[str, DiskStat]:
        """Each target's read counters, from its own ``stat`` file: /proc/diskstats prints
        every block device of the machine (a fleet host has hundreds of partitions, dm and
        loop devices), and parsing its lines was ~0.05 ms of a tick here with 10 of them. A
        removed device (DeviceGone) or garbled counters leave the target out."""
        out = {}
        for t in targets:
            try:
                stat = parse_block_stat(self._attr(f"{t.owner}/stat", t.owner).read())
            except DeviceGone:
                continue
            if stat is not None:
                out[t.name] = stat
        return out

    def _attr(self, rel: str, owner: str) -> KeptAttr:
        attr = self._attrs.get(rel)
        if attr is None:
            if len(self._attrs) > 128:  # targets come and go: stay bounded
                self._close_attrs()
            attr = self._attrs[rel] = KeptAttr(self.root, rel, owner)
        return attr

    def _close_attrs(self) -> None:
        for attr in self._attrs.values():
            attr.close()
        self._attrs = {}

    def candidates(self, target: Target) -> tuple[int, ...]:
        return CANDIDATES

    def reward(self, o: Observation) -> float | None:
        """The application's read throughput in KiB/s, seen in the trace (:func:`app_kib_s`).
        Not the device's MB/s, which a too-large readahead inflates with pages nobody reads."""
        return app_kib_s(o.features)

    def signature(self, o: Observation) -> tuple[float, ...] | None:
        """The workload's signature (:func:`workload_signature`)."""
        return workload_signature(o.features)

    def plan(self, target: Target, value: int) -> Change:
        old = self.current(target)
        # The kernel keeps whole pages: 6 reads back as 4 (Documentation/ABI/stable/sysfs-block).
        expect = max(value // 4 * 4, 0)
        return Change(self.name, target.name, target.path, str(old), str(value), str(expect))

    def apply(self, change: Change) -> str:
        owner = change.path.rsplit("/queue/", 1)[0]
        self.root.write(change.path, change.new, owner=owner)
        self._wrote.add(change.target)  # written: the next observe() reads its window
        got = self.root.read(change.path, owner=owner)
        if got != change.expect:
            # repr: whatever the kernel shows, the message (and its log line) is one line.
            raise WriteMismatch(f"/{change.path}: wrote {change.new}, kernel shows "
                                f"{reprlib.repr(got)}")
        return got

    def close(self) -> None:
        self._close_sampler()
        self._close_attrs()
        for f in self._proc.values():
            f.close()


def _knob_value(target: Target, text: str) -> int:
    value = parse_u64(text)
    if value is None:
        # repr: the message stays one line whatever the file holds.
        raise Unparsable(f"/{target.path}: not an unsigned integer: {reprlib.repr(text)}")
    return value


def _disk_features(cur: DiskStat, old: DiskStat | None, dt: float) -> dict[str, float]:
    keys = ("rd_iops", "rd_mbps", "rd_req_kb", "rd_merge_frac", "util")
    if old is None or dt <= 0:
        return dict.fromkeys(keys, NAN)
    reads = cur.reads - old.reads
    sectors = cur.sectors_read - old.sectors_read
    merged = cur.reads_merged - old.reads_merged
    return {
        "rd_iops": reads / dt,
        "rd_mbps": sectors * 512 / 1e6 / dt,
        "rd_req_kb": sectors / 2 / reads if reads else NAN,
        "rd_merge_frac": merged / (merged + reads) if merged + reads else NAN,
        "util": min((cur.io_ticks_ms - old.io_ticks_ms) / 1000 / dt, 1.0),
    }


def moved(ref: tuple[float, float], now: tuple[float, float], factor: float,
          how: str = "") -> str:
    """Why (requests/s, KiB/s) ``now`` differs from ``ref`` by ``factor`` or more, or "".
    Rates below the floors count as the floors: an idle disk's few reads are no change."""
    for name, floor, a, b in (("reads/s", WATCH_FLOOR_IOPS, ref[0], now[0]),
                              ("KiB/s", WATCH_FLOOR_KIBS, ref[1], now[1])):
        lo, hi = sorted((max(a, floor), max(b, floor)))
        if hi >= factor * lo:
            return f"{name} {a:.0f} -> {b:.0f}" + (f" {how}" if how else "")
    return ""


def workload_signature(f: Mapping[str, float]) -> tuple[float, ...] | None:
    """Stream fraction, adjacency, fault share and request size (log, scaled to 0-1);
    a part the sampled window could not tell is NaN, None when it saw nothing."""
    sig = (f.get("tr_seq_frac", NAN), f.get("tr_near_frac", NAN), f.get("tr_fault_frac", NAN))
    if all(math.isnan(v) for v in sig):
        return None
    req = f.get("tr_req_pages", NAN)
    size = 0.0 if math.isnan(req) else min(math.log2(max(req, 1)) / 8, 1.0)
    return (*sig, size)


def app_kib_s(f: Mapping[str, float]) -> float | None:
    """KiB/s the application read in the sampled window: accesses per second times pages
    per access. A read() brings its request's pages. A page fault of a sequential mmap
    reader brings the pages from its stream's last fault: the kernel maps what readahead
    put in the page cache at once, so the next fault lands one readahead window further
    (measured on mmap-seq: 64 pages apart at 256 KiB, 242 at 1024). Counting each fault as
    one page made a better readahead look worse: 256 -> 1024 measured 0.51-0.55x and was
    reverted, where the device read 1.2x and the static sweep 1.00x (shuffled mix, -v17).
    A fault outside a stream (a random reader; under half the window's accesses continue a
    stream) is one page. ``tr_log_gap`` is the mean of log2(1 + gap) over the window, so
    2 ** tr_log_gap is the pages per fault of a steady stream; it is capped at the stream
    detector's largest gap. None when the window saw no access."""
    rate_log2, faults = f.get("tr_rate_log2", NAN), f.get("tr_fault_frac", NAN)
    if math.isnan(rate_log2) or math.isnan(faults):
        return None
    req, seq, gap = (f.get(k, NAN) for k in ("tr_req_pages", "tr_seq_frac", "tr_log_gap"))
    per_fault = min(2 ** gap, STREAM_GAP_PAGES + 1) if seq >= 0.5 and gap > 0 else 1.0
    pages = faults * per_fault + (1 - faults) * (1.0 if math.isnan(req) else req)
    return (2 ** rate_log2 - 1) * pages * 4


def told_random(f: dict[str, float]) -> dict[str, float]:
    """Stream and adjacency fractions 0 (in place, and returned) for a window of page
    faults that say "random" though no file was accessed twice: at least
    RANDOM_FAULT_FILES faults, each in a file of its own, no readahead event, at a
    readahead of 16 KiB or more.

    Why: a fault outside a stream makes the kernel read around it (do_sync_mmap_readahead)
    without a readahead tracepoint, where the faults of a sequential mmap reader land on
    the page marked PG_readahead and fire page_cache_async_ra. Mmap random reads at 2560
    KiB fault ~300 times a second over 64 files, so a 0.25 s window sees each file once and
    the stream statistics stay unknown; the model, which has such rows only at 4096 (19 of
    960), scored every value within 2 % and the first write waited ~0.8 s for the next
    tick (7 of the 36 mmap-rand phases that wrote, -v20 to -v26). In every stored benchmark
    log the 85 windows this rule matches were mmap random reads; with it the shipped model
    picks 64 at +48-78 % on those flat ticks. Applied in the same way to the training rows
    (`mltune train`)."""
    def num(key: str) -> float:
        v = f.get(key)
        return NAN if v is None else v

    if math.isnan(num("tr_seq_frac")) and num("tr_fault_frac") >= 0.5 \
            and math.isnan(num("tr_async_frac")) and num("tr_files") >= RANDOM_FAULT_FILES \
            and num("ra_kb_log2") >= 4:
        f["tr_seq_frac"] = f["tr_near_frac"] = 0.0
    return f


def _trace_features(s: TraceStats | None) -> dict[str, float]:
    if s is None or s.accesses == 0:
        # Traced but idle device: no accesses in the window.
        return dict.fromkeys(TRACE_FEATURES, NAN) | {"tr_rate_log2": 0.0}
    ra_events = s.sync_ra + s.async_ra
    return {
        "tr_rate_log2": math.log2(1 + s.rate) if not math.isnan(s.rate) else 0.0,
        "tr_fault_frac": s.faults / s.accesses,
        "tr_seq_frac": s.seq_frac,
        "tr_near_frac": s.near_frac,
        "tr_log_gap": s.log_gap,
        "tr_req_pages": s.req_pages,
        "tr_files": float(s.files),
        "tr_async_frac": s.async_ra / ra_events if ra_events else NAN,
        "tr_ra_pages_log2": math.log2(s.ra_pages) if s.ra_pages > 0 else NAN,
        "tr_run_pages_log2": math.log2(s.run_pages) if s.run_pages > 0 else NAN,
    }
