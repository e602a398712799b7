"""Tracepoints sampled through perf events: one group per CPU, enabled only in the window.

Why perf and not a tracefs instance: an enabled tracefs event costs every ``read()`` even
while the instance's ``tracing_on`` is 0. The probe stays attached, and with an event filter
the kernel builds and filters each event before it looks at ``tracing_on``. Measured here
(4 KiB ``pread`` of cached data, ns per call, min of 10): 541 untraced, 797 with the four
filtered events armed and off, 667 unfiltered. That was ~10 % of a 2 GB/s sequential reader
(README, "Tracing cost"). A *disabled* perf event leaves the probe an empty-list check:
546-553 ns, the same as untraced. Attaching a tracefs event only for the window instead
costs ~12 ms of wall time and ~1.9 ms of CPU per tick; enabling a perf group is one ioctl
per CPU.

Other gains: the events go away with the process (kill -9 leaves nothing behind), and
tracefs is needed only to read the events' ids and formats when the sampler opens.

The records carry the same event payload as the tracefs ring buffer, so the same decoders
(:mod:`mltune.ringbuf`) unpack them and the same text cap applies.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import math
import mmap
import os
import platform
import select
import struct
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import MltuneError
from .ringbuf import Decoder, Event, EventFormat, line_len, merge_capped, native_layouts

# perf_event_open(2) is not in Python's os module. Only architectures with the generic
# ioctl encoding and little-endian records (what the decoders read) are listed.
_SYSCALL = {"x86_64": 298, "aarch64": 241, "riscv64": 241}
_IOC_WRITE = 1
_ENABLE, _DISABLE, _SET_OUTPUT = 0x2400, 0x2401, 0x2405
_SET_FILTER = (_IOC_WRITE << 30) | (ctypes.sizeof(ctypes.c_void_p) << 16) | (0x24 << 8) | 6
_TYPE_TRACEPOINT = 2
_SAMPLE_TIME, _SAMPLE_RAW = 1 << 2, 1 << 10
_FLAG_FD_CLOEXEC = 1 << 3
_WATERMARK = 1 << 14  # perf_event_attr flag: wake pollers at wakeup_watermark bytes
_RECORD_LOST, _RECORD_SAMPLE = 2, 9
# struct perf_event_attr up to config1 (PERF_ATTR_SIZE_VER0, 64 bytes): type, size, config,
# sample_period, sample_type, read_format, flag bits (bit 0: disabled), wakeup_events,
# bp_type, config1.
_ATTR = struct.Struct("<IIQQQQQIIQ")
_HEADER = struct.Struct("<IHH").unpack_from  # perf_event_header: type, misc, size
# PERF_SAMPLE_TIME, the raw size, then the raw data's first field: the event id.
_SAMPLE = struct.Struct("<QIH").unpack_from
_U64 = struct.Struct("<Q")
_DATA_HEAD, _DATA_TAIL, _DATA_OFFSET = 1024, 1032, 1040  # in struct perf_event_mmap_page


try:  # built by pip install from tuner/_perfswitch.c; optional: without it, plain ioctls
    from ._perfswitch import Switcher as SWITCH
except ImportError:  # pragma: no cover - depends on the build
    SWITCH = None


log = logging.getLogger(__name__)


class PerfError(MltuneError):
    """perf events cannot be used here (syscall missing, refused, unsupported arch)."""


def _syscall_nr() -> int:
    nr = _SYSCALL.get(platform.machine())
    if nr is None:
        raise PerfError(f"perf_event_open not wired for {platform.machine()}")
    return nr


def perf_event_open(attr: bytes, cpu: int, group_fd: int) -> int:
    """A system-wide (pid -1) event on ``cpu``; the fd is close-on-exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(ctypes.c_long(_syscall_nr()), buf, ctypes.c_int(-1), ctypes.c_int(cpu),
                      ctypes.c_int(group_fd), ctypes.c_ulong(_FLAG_FD_CLOEXEC))
    if fd < 0:
        code = ctypes.get_errno()
        hint = " (perf_event_paranoid, seccomp or a container)" \
            if code in (errno.EACCES, errno.EPERM, errno.ENOSYS) else ""
        raise PerfError(f"perf_event_open on cpu {cpu}: {os.strerror(code)}{hint}")
    return fd


def online_cpus(text: str) -> list[int]:
    """``/sys/devices/system/cpu/online`` ("0-3,6") as a list of CPU numbers."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise PerfError(f"unreadable list of online CPUs: {text.strip()[:40]!r}")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


class PerfSource:
    """The sampled tracepoints as perf events: per CPU, a group led by the first event, all
    writing to the leader's ring buffer, filtered in the kernel by ``filter``.

    The group leader is created disabled and the others enabled, so enabling or disabling
    the leader switches the whole group (one ioctl per CPU). CPUs that come online later
    are not sampled until the sampler is opened again."""

    name = "perf"

    def __init__(self, formats: Sequence[EventFormat], table: dict[int, Decoder],
                 event_filter: str, cpus: Sequence[int], data_pages: int = 8,
                 enough: int = 16384, threaded: bool = True) -> None:
        if data_pages & (data_pages - 1):
            raise ValueError("perf ring buffers are a power of two pages")
        self.formats = list(formats)
        self.table = table
        self.layouts = native_layouts(self.formats, table)  # for mltune._fasttrace
        self.filter = event_filter
        self.cpus = list(cpus)
        self.data_pages = data_pages
        # Bytes of records after which a window has what the features use: the text cap
        # (16 KiB) holds at most ~184 events (89-byte lines at the shortest), ~11 KiB of
        # records (56-64 bytes each). See wait().
        self.enough = min(enough, data_pages * mmap.PAGESIZE)
        # Records the kernel dropped because a buffer was full, as far as the records were
        # read (a CPU's records past what the window keeps are not).
        self.lost = 0
        self._leaders: list[int] = []
        self._fds: list[int] = []
        self._maps: list[mmap.mmap] = []
        self._poll = select.poll()
        # A thread on each CPU switches its group (mltune._perfswitch): no IPI waited for.
        self._want_threads = threaded and SWITCH is not None
        self._switcher: Any = None

    def open(self) -> None:
        try:
            for cpu in self.cpus:
                self._open_cpu(cpu)
            if self._want_threads:
                try:
                    self._switcher = SWITCH(self._leaders, self.cpus)
                except OSError as err:  # e.g. no threads left: the ioctls work from here too
                    log.warning("perf events switched by ioctls from the agent: no thread per "
                                "CPU (%s)", os.strerror(err.errno or 0))
        except BaseException:
            self.close()
            raise

    def _open_cpu(self, cpu: int) -> None:
        page = mmap.PAGESIZE
        leader = -1
        for f in self.formats:
            # The leader starts disabled (the group with it) and owns the ring buffer, whose
            # watermark wakes wait() every quarter of ``enough``: the kernel counts it from
            # the last wake-up, which the last window left anywhere.
            attr = _ATTR.pack(_TYPE_TRACEPOINT, _ATTR.size, f.id, 1, _SAMPLE_TIME | _SAMPLE_RAW,
                              0, (1 | _WATERMARK) if leader < 0 else 0,
                              max(self.enough // 4, 1) if leader < 0 else 0, 0, 0)
            fd = perf_event_open(attr, cpu, leader)
            self._fds.append(fd)
            self._ioctl(fd, _SET_FILTER, bytearray(self.filter.encode() + b"\0"))
            if leader < 0:
                leader = fd
                self._leaders.append(fd)
                try:
                    self._maps.append(mmap.mmap(fd, (1 + self.data_pages) * page))
                except OSError as err:  # e.g. EPERM: perf_event_mlock_kb used up
                    raise PerfError(f"perf ring buffer on cpu {cpu}: "
                                    f"{os.strerror(err.errno or 0)}") from err
                self._poll.register(fd, select.POLLIN)
            else:
                self._ioctl(fd, _SET_OUTPUT, leader)

    @property
    def threaded(self) -> bool:
        """Whether a thread on each CPU switches the events (see :meth:`switch`)."""
        return self._switcher is not None

    @staticmethod
    def _ioctl(fd: int, request: int, arg: int | bytearray) -> None:
        """``arg``: an int, or a buffer passed by address (a C string for the filter)."""
        try:
            fcntl.ioctl(fd, request, arg)
        except OSError as err:
            raise PerfError(f"perf ioctl {request:#x}: {os.strerror(err.errno or 0)}") from err

    def wait(self, seconds: float) -> None:
        """Let the window run for ``seconds``, or until a CPU's buffer holds ``enough``.

        An enabled event costs every traced read() 2-2.5x (perf builds and filters each
        one, then drops it once the buffer is full): a stream at 500 k reads/s fills the
        buffer in under a millisecond, and the rest of a 50 ms window was pure cost to it.
        The features do not change: once one CPU holds records for more than the text cap,
        every event the cap keeps is earlier than now, and all of those were recorded."""
        end = time.monotonic() + seconds
        # Woken by a buffer's watermark, which counts bytes since its last wake-up, not
        # since this window began: the head says whether this window has enough.
        while not self._filled() and (left := end - time.monotonic()) > 0:
            for _, ev in self._poll.poll(max(1, math.ceil(left * 1000))):
                if ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    time.sleep(max(0.0, end - time.monotonic()))  # no wake-ups: plain window
                    return

    def _filled(self) -> bool:
        for m in self._maps:
            if _U64.unpack_from(m, _DATA_HEAD)[0] - _U64.unpack_from(m, _DATA_TAIL)[0] \
                    >= self.enough:
                return True
        return False

    def switch(self, on: bool) -> None:
        """Enable or disable every CPU's group. Threaded, it returns at once: a CPU's thread
        may disable its group after the window was drained, so the records written since
        are dropped when the next window starts."""
        if on:
            self._poll.poll(0)  # take a wake-up left from the last window: not this one's
        if self._switcher is None:
            request = _ENABLE if on else _DISABLE
            for fd in self._leaders:
                self._ioctl(fd, request, 0)
            return
        if on:
            for m in self._maps:  # what a late disable let in: not this window's
                _U64.pack_into(m, _DATA_TAIL, _U64.unpack_from(m, _DATA_HEAD)[0])
        try:
            self._switcher.switch(on)
        except OSError as err:
            raise PerfError(f"perf ioctl from a CPU's thread: "
                            f"{os.strerror(err.errno or 0)}") from err

    def drain(self) -> list[bytes]:
        """Each CPU's unread records (the ring's wrap undone); the space is handed back."""
        out = []
        for m in self._maps:
            head = _U64.unpack_from(m, _DATA_HEAD)[0]
            tail = _U64.unpack_from(m, _DATA_TAIL)[0]
            base, size = _U64.unpack_from(m, _DATA_OFFSET)[0], self.data_pages * mmap.PAGESIZE
            base = base or mmap.PAGESIZE  # data_offset is 0 before Linux 4.1
            start, n = tail % size, min(head - tail, size)
            if start + n <= size:
                out.append(m[base + start:base + start + n])
            else:
                out.append(m[base + start:base + size] + m[base:base + start + n - size])
            _U64.pack_into(m, _DATA_TAIL, head)
        return out

    def events(self, limit: int) -> list[Event]:
        """The window's events in ``trace_pipe``'s order, as many as fit in ``limit`` bytes
        of its text: what a tracefs instance would give."""
        return self.decode(self.drain(), limit)

    def decode(self, bufs: Sequence[bytes], limit: int) -> list[Event]:
        """Each CPU's records, decoded only as far as the merged order takes them
        (:func:`mltune.ringbuf.merge_capped`): decoding every CPU up to ``limit`` on its
        own, then merging, decoded about half as many events again as were kept."""
        return merge_capped([self._records(buf) for buf in bufs], limit)

    def _records(self, buf: bytes) -> Iterator[Event]:
        """The events of one CPU's records, in order, up to anything malformed."""
        pos, end, get = 0, len(buf), self.table.get
        while pos + 8 <= end:
            kind, _, size = _HEADER(buf, pos)
            if size < 8 or pos + size > end:
                break  # malformed: the rest cannot be framed
            if kind == _RECORD_SAMPLE and size >= 22:
                ts, raw_size, ident = _SAMPLE(buf, pos + 8)
                dec = get(ident) if raw_size >= 2 else None
                if dec is not None:
                    name, unpack, fixed = dec
                    try:
                        v = unpack(buf, pos + 20)
                    except struct.error:  # cut short: the buffer ends inside the record
                        break
                    yield ts, name, v, line_len(name, ts, v, fixed)
            elif kind == _RECORD_LOST and size >= 24:
                self.lost += _U64.unpack_from(buf, pos + 16)[0]
            pos += size

    def close(self) -> None:
        if self._switcher is not None:  # joined before the descriptors it uses are closed
            self._switcher.close()
            self._switcher = None
        for m in self._maps:
            m.close()
        for fd in self._fds:
            os.close(fd)
        self._maps, self._fds, self._leaders = [], [], []
