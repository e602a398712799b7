"""The tracefs side of sampling: mounting tracefs, event formats, and a private instance.

Every sampler reads the events' ids and formats here. The instance (:class:`TracefsSource`)
is the fallback where perf events cannot be used (:mod:`mltune.perf`): its armed events cost
the traced workload even between windows.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import MltuneError
from .ringbuf import Decoder, Event, check_header_page, decode
from .sysfs import Root, translate

EVENTS = (
    "filemap/mm_filemap_get_pages",
    "filemap/mm_filemap_fault",
    "readahead/page_cache_sync_ra",
    "readahead/page_cache_async_ra",
)
TRACEFS = "sys/kernel/tracing"
INSTANCE_PREFIX = "mltune-"


def mount(root: Root) -> bool:
    """Mount tracefs if it is not mounted; whether this call mounted it."""
    if root.exists(f"{TRACEFS}/events"):
        return False
    done = subprocess.run(["mount", "-t", "tracefs", "nodev", str(root.path(TRACEFS))],
                          capture_output=True, check=False)
    if done.returncode != 0 or not root.exists(f"{TRACEFS}/events"):
        raise MltuneError(f"cannot mount tracefs at /{TRACEFS}")
    return True


def unmount(root: Root) -> None:
    subprocess.run(["umount", str(root.path(TRACEFS))], check=False)


def private_formats(events: Sequence[str] = EVENTS) -> list[str]:
    """The events' ``format`` files, read from a tracefs mounted in a private mount
    namespace of a child process (util-linux ``unshare``), so the host's mount table never
    changes. Perf events need only the ids and formats; mounting tracefs on the host for
    them raced between two agents starting at once (one unmounted while the other read).
    The running kernel only: a ``--root`` tree has its own files."""
    script = ('mount -t tracefs nodev "$0" || exit 1; for e; do cat "$0/events/$e/format" '
              "|| exit 1; printf '\\0'; done")
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               script, f"/{TRACEFS}", *events],
                              capture_output=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MltuneError(f"cannot read tracepoint formats in a private mount: {err}") from err
    texts = done.stdout.decode("ascii", "replace").split("\0")[:-1]
    if done.returncode != 0 or len(texts) != len(events):
        why = done.stderr.decode("ascii", "replace").strip().splitlines()[-1:] or ["no output"]
        raise MltuneError(f"cannot read tracepoint formats in a private mount: {why[0]}")
    return texts


class TracefsSource:
    """A private tracefs instance with a kernel-side filter and a small non-overwriting
    buffer. ``tracing_on`` and each CPU's ``trace_pipe_raw`` stay open: a window costs two
    writes and a few page reads, no open() and no text."""

    name = "tracefs"

    def __init__(self, root: Root, table: dict[int, Decoder], event_filter: str,
                 buffer_kb: int = 8) -> None:
        self.root = root
        self.table = table
        self.filter = event_filter
        self.buffer_kb = buffer_kb
        self.instance = f"{TRACEFS}/instances/{INSTANCE_PREFIX}{os.getpid()}"
        self._open = False
        self._on = -1  # fd of the instance's tracing_on
        self._pipes: list[int] = []  # fd of each CPU's trace_pipe_raw
        self._page = 4096  # bytes per ring-buffer page (buffer_subbuf_size_kb)

    def open(self) -> None:
        """Set up the instance. On failure :meth:`close` undoes what was done (the sampler
        calls it: :meth:`mltune.tracing.TraceSampler.open`)."""
        check_header_page(self.root.read(f"{TRACEFS}/events/header_page"))
        remove_stale_instances(self.root)
        _dir_op(os.makedirs, self.root.path(self.instance), exist_ok=True)
        self._open = True
        self.root.write(f"{self.instance}/tracing_on", "0")
        self.root.write(f"{self.instance}/buffer_size_kb", str(self.buffer_kb))
        self.root.write(f"{self.instance}/options/overwrite", "0")
        sub = self.root.read(f"{self.instance}/buffer_subbuf_size_kb", fallback="4")
        self._page = int(sub) * 1024 if sub.isdigit() else 4096
        for ev in EVENTS:
            self.root.write(f"{self.instance}/events/{ev}/filter", self.filter)
            self.root.write(f"{self.instance}/events/{ev}/enable", "1")
        self._on = self._fd("tracing_on", os.O_WRONLY)
        cpus = sorted((n for n in self.root.listdir(f"{self.instance}/per_cpu")
                       if n[3:].isdigit()), key=lambda n: int(n[3:]))
        for c in cpus:
            self._pipes.append(self._fd(f"per_cpu/{c}/trace_pipe_raw",
                                        os.O_RDONLY | os.O_NONBLOCK))

    def _fd(self, rel: str, flags: int) -> int:
        path = self.root.path(f"{self.instance}/{rel}")
        try:
            return os.open(path, flags)
        except OSError as err:
            raise translate(err, path) from err

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def switch(self, on: bool) -> None:
        try:
            os.write(self._on, b"1" if on else b"0")
        except OSError as err:
            raise translate(err, self.root.path(f"{self.instance}/tracing_on")) from err

    def drain(self) -> list[list[bytes]]:
        """Consume every CPU's buffer through ``trace_pipe_raw``, a page per read.

        Clearing with ``echo > trace`` costs ~20 ms per call on this kernel (it waits for
        every CPU); a consuming read leaves the buffer empty for the next window, and the
        small buffer bounds what it returns.
        """
        out = []
        for fd in self._pipes:
            pages = []
            try:
                while page := os.read(fd, self._page):
                    pages.append(page)
            except BlockingIOError:
                pass  # empty
            except OSError as err:
                raise translate(err, self.root.path(f"{self.instance}/per_cpu")) from err
            out.append(pages)
        return out

    def events(self, limit: int) -> list[Event]:
        return decode(self.drain(), self.table, limit)

    def close(self) -> None:
        # The instance cannot be removed while its files are open (EBUSY).
        for fd in [self._on, *self._pipes]:
            if fd >= 0:
                os.close(fd)
        self._on, self._pipes = -1, []
        if self._open:
            self._open = False
            try:
                self.root.write(f"{self.instance}/tracing_on", "0")
                for ev in EVENTS:
                    self.root.write(f"{self.instance}/events/{ev}/enable", "0")
            finally:
                _dir_op(os.rmdir, self.root.path(self.instance))


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
