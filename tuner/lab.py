"""Workload laboratory: a dataset on a loop device, a small memory cgroup, fio access patterns.

Used by ``mltune collect`` (training data) and ``bench/readahead.py`` (regime comparison).
Everything here drives the real kernel as root: loop devices, ext4, memory cgroups, fio.
Nothing happens at import time; a :class:`Lab` creates its resources in ``__enter__`` and
removes every one of them in ``__exit__``, also on exceptions and KeyboardInterrupt.

Why the lab looks the way it does:

* ``read_ahead_kb`` is copied into a file's readahead state at open(), so a changed knob only
  reaches files opened afterwards. Workloads therefore re-open their files while they run:
  sequential readers at every file (32 MiB by default), random readers every ``reopen``
  seconds (see :func:`job_file`); otherwise live tuning could never show an effect.
* The workload runs in a memory cgroup much smaller than the dataset: with the whole dataset
  cached, readahead decides nothing.
* The loop device uses direct I/O on its backing file, which keeps the backing file out of the
  host page cache; only the page cache of the loop device's own filesystem counts.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, TypeVar

MIB = 1024 * 1024
_T = TypeVar("_T")


class LabError(RuntimeError):
    """The lab could not be set up or torn down, or a workload failed."""


# --------------------------------------------------------------------------- access patterns


@dataclass(frozen=True)
class Pattern:
    """One access pattern: fio options shared by its streams, plus one fio job per stream.

    Streams run concurrently and split the dataset's files between them, so each stream owns
    its files, as separate applications would.
    """

    name: str
    fio_args: tuple[str, ...]
    unit: str = "MB/s"
    streams: tuple[tuple[str, ...], ...] = ((),)


# psync patterns keep fio's default fadvise_hint=1, as the measurements in
# shared/reference/this-machine.md did: POSIX_FADV_SEQUENTIAL doubles a sequential reader's
# window, POSIX_FADV_RANDOM turns readahead off for pread-rand.
_SEQ = ("--rw=read", "--ioengine=psync", "--file_service_type=sequential")
# fadvise_hint=0 for mmap: fio's default madvise(MADV_RANDOM) disables mmap read-around and
# hides exactly the effect we want to see.
_MMAP_RAND = ("--rw=randread", "--ioengine=mmap", "--fadvise_hint=0")
_MMAP_SEQ = ("--rw=read", "--ioengine=mmap", "--fadvise_hint=0", "--file_service_type=sequential")
_PREAD_RAND = ("--rw=randread", "--ioengine=psync")


def _catalogue(*patterns: Pattern) -> dict[str, Pattern]:
    """Build the pattern registry; a duplicated name is a programming error."""
    table: dict[str, Pattern] = {}
    for pattern in patterns:
        if pattern.name in table:
            raise ValueError(f"duplicate access pattern name: {pattern.name!r}")
        table[pattern.name] = pattern
    return table


PATTERNS: dict[str, Pattern] = _catalogue(
    Pattern("seq", ("--bs=4k", *_SEQ)),
    Pattern("mmap-rand", ("--bs=4k", *_MMAP_RAND)),
    Pattern("pread-rand", ("--bs=4k", *_PREAD_RAND)),
    Pattern("multi-seq", ("--bs=4k", *_SEQ), streams=((),) * 4),
    Pattern("mmap-seq", ("--bs=4k", *_MMAP_SEQ)),
    # Training variety for `mltune collect`; not in the benchmark's default mix.
    Pattern("seq-64k", ("--bs=64k", *_SEQ)),
    Pattern("rand-16k-mmap", ("--bs=16k", *_MMAP_RAND)),
    Pattern("mixed", ("--bs=4k",), streams=(_SEQ, _MMAP_RAND)),
    Pattern("multi-seq-2", ("--bs=4k", *_SEQ), streams=((),) * 2),
    Pattern("mmap-rand-2", ("--bs=4k", *_MMAP_RAND), streams=((),) * 2),
    Pattern("mmap-seq-2", ("--bs=4k", *_MMAP_SEQ), streams=((),) * 2),
    Pattern("pread-rand-64k", ("--bs=64k", *_PREAD_RAND)),
)

BENCH_PHASES: tuple[str, ...] = ("seq", "mmap-rand", "pread-rand", "multi-seq", "mmap-seq")


@dataclass(frozen=True)
class FioResult:
    """What one workload run read, over its wall time (fio start to fio's report, which
    includes fio's own start-up, ~0.3 s here)."""

    pattern: str
    seconds: float
    io_bytes: int
    ios: int

    @property
    def mbps(self) -> float:
        return self.io_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def iops(self) -> float:
        return self.ios / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------- small helpers

# Debian package that provides each tool, for the error message.
_TOOLS = {
    "fio": "fio",
    "losetup": "mount",
    "mkfs.ext4": "e2fsprogs",
    "mount": "mount",
    "umount": "mount",
}


def check_tools() -> None:
    """Raise LabError naming every missing command-line tool and how to install it."""
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(sorted({_TOOLS[tool] for tool in missing}))
        raise LabError(
            f"missing tool(s): {', '.join(missing)}; install with: apt-get install -y {packages}"
        )


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _run(cmd: Sequence[str], what: str) -> str:
    """Run a command to completion; a non-zero exit becomes a LabError with stderr's tail."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise LabError(f"{what}: cannot run {cmd[0]}: {err.strerror}") from err
    if done.returncode != 0:
        raise LabError(f"{what} failed (`{shlex.join(cmd)}` exit {done.returncode}): "
                       f"{_tail(done.stderr)}")
    return done.stdout


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as err:
        raise LabError(f"cannot read {path}: {err.strerror}") from err


def _write(path: Path, value: str) -> None:
    try:
        with path.open("w") as handle:
            handle.write(value)
    except OSError as err:
        raise LabError(f"cannot write {value!r} to {path}: {err.strerror}") from err


def drop_caches() -> None:
    """Write back dirty pages, then drop the page cache, dentries and inodes (system-wide).

    fio's own binary and libraries are read back in at once: otherwise the first run after a
    drop pays for reading them (~60 MB here, with the root disk's large read-ahead) and its
    figure is skewed.
    """
    os.sync()
    _write(Path("/proc/sys/vm/drop_caches"), "3")
    _run(["fio", "--version"], "warming fio after dropping caches")


# --------------------------------------------------------------------------- mounts and cgroups


class Mount(NamedTuple):
    """One line of /proc/self/mountinfo (the fields the lab needs)."""

    majmin: str
    root: str
    mount_point: Path
    options: tuple[str, ...]
    fstype: str
    super_options: tuple[str, ...]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse /proc/<pid>/mountinfo (see proc(5)); optional fields end at the lone '-'."""
    mounts = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        if not sep:
            continue
        fields, fs = head.split(), tail.split()
        mounts.append(Mount(
            majmin=fields[2],
            root=_unescape(fields[3]),
            mount_point=Path(_unescape(fields[4])),
            options=tuple(fields[5].split(",")),
            fstype=fs[0],
            super_options=tuple(fs[2].split(",")) if len(fs) > 2 else (),
        ))
    return mounts


def _mounts() -> list[Mount]:
    return parse_mountinfo(_read(Path("/proc/self/mountinfo")))


@dataclass(frozen=True)
class CgroupRoot:
    """Where the lab creates its memory cgroup, and how that hierarchy spells the limit."""

    path: Path
    version: int
    needs_memory_enabled: bool = False

    @property
    def limit_file(self) -> str:
        return "memory.max" if self.version == 2 else "memory.limit_in_bytes"


def find_memory_cgroup_root(mounts: Sequence[Mount]) -> CgroupRoot:
    """Prefer cgroup v2 when it has the memory controller; on hybrid hosts, where v1 owns the
    memory controller, v2's cgroup.controllers lacks it and v1 is used instead."""
    for mount in mounts:
        if mount.fstype == "cgroup2":
            controllers = _read(mount.mount_point / "cgroup.controllers").split()
            if "memory" in controllers:
                enabled = _read(mount.mount_point / "cgroup.subtree_control").split()
                return CgroupRoot(mount.mount_point, 2, "memory" not in enabled)
    for mount in mounts:
        if mount.fstype == "cgroup" and "memory" in mount.super_options:
            return CgroupRoot(mount.mount_point, 1)
    raise LabError("no usable memory cgroup: neither cgroup v2 with the memory controller "
                   "nor a cgroup v1 memory hierarchy is mounted")


def _cgroup_pids(path: Path) -> list[int]:
    procs = path / "cgroup.procs"
    return [int(pid) for pid in _read(procs).split()] if procs.exists() else []


def _remove_cgroup(path: Path, timeout: float = 5.0) -> None:
    """Kill what is left in our own cgroup, then rmdir it; rmdir is EBUSY until they are gone."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in _cgroup_pids(path):
            # Only our fio processes can be in this cgroup; one may exit before the kill.
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() > deadline:
                raise LabError(f"cannot remove cgroup {path}: {err.strerror}") from err
        time.sleep(0.05)


def _disable_memory_controller(root: Path) -> None:
    """Undo our '+memory' in the v2 root; others may have come to rely on it, so only warn."""
    try:
        _write(root / "cgroup.subtree_control", "-memory")
    except LabError as err:
        warnings.warn(f"left the memory controller enabled in {root}: {err}", stacklevel=2)


# --------------------------------------------------------------------------- loop devices


def loop_name(device: str) -> str:
    """'loop3' or '/dev/loop3' -> 'loop3'; anything else is refused with ValueError."""
    name = device.removeprefix("/dev/")
    if not re.fullmatch(r"loop\d+", name):
        raise ValueError(f"{device!r} is not a loop device (expected loopN or /dev/loopN)")
    return name


def _attach_loop(backing: Path) -> str:
    out = _run(["losetup", "--direct-io=on", "-f", "--show", str(backing)],
               "attaching a loop device")
    return loop_name(out.strip())


def _detach_loop(name: str) -> None:
    _run(["losetup", "-d", f"/dev/{name}"], f"detaching /dev/{name}")


def _unmount(mount_point: Path, timeout: float = 5.0) -> None:
    """umount, retrying briefly: a process that just exited may still hold the mount busy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _run(["umount", str(mount_point)], f"unmounting {mount_point}")
            return
        except LabError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def mount_of_loop(name: str) -> Path:
    """Mount point of the filesystem on an attached loop device; ValueError if there is none."""
    block = Path("/sys/block") / name
    if not (block / "loop").is_dir():
        raise ValueError(f"/dev/{name} is not an attached loop device")
    majmin = _read(block / "dev")
    mounts = [m for m in _mounts() if m.majmin == majmin and "rw" in m.options]
    if not mounts:
        raise ValueError(f"/dev/{name} has no filesystem mounted read-write; mount one, "
                         "or let the lab create its own device (device=None)")
    # A bind mount of a subdirectory works too, but the whole filesystem is the natural choice.
    mounts.sort(key=lambda m: m.root != "/")
    return mounts[0].mount_point


# --------------------------------------------------------------------------- fio job files


def _job_options(args: Sequence[str]) -> list[str]:
    """'--rw=read' -> 'rw=read': the catalogue reads like fio's command line."""
    options = []
    for arg in args:
        if not arg.startswith("--"):
            raise ValueError(f"fio option must look like --name[=value]: {arg!r}")
        options.append(arg[2:])
    return options


def _is_random(options: Sequence[str]) -> bool:
    rw = next((o[3:] for o in reversed(options) if o.startswith("rw=")), "read")
    return rw.startswith("rand")


def _stream_files(files: int, stream: int, streams: int, file_bytes: int) -> list[str]:
    """Stream k of n owns its own contiguous share of the files, as separate applications."""
    own = range(stream * files // streams, (stream + 1) * files // streams)
    return [f"filename={':'.join(f'data.{i}' for i in own)}", f"size={len(own) * file_bytes}"]


def _sequential_stream(name: str, options: list[str], seconds: float) -> list[str]:
    # One job for the whole run: with file_service_type=sequential fio opens each file when it
    # gets there and closes it when done, so a new read_ahead_kb applies from the next file.
    return [f"[{name}]", *options, "time_based=1", f"runtime={_ms(seconds)}ms", ""]


def _random_stream(name: str, options: list[str], seconds: float, reopen: float,
                   seed: int) -> list[str]:
    # Random readers keep every file open (and mmapped) for the whole job, and fio has no
    # "re-open every N seconds"; so the stream is a chain of short jobs, each opening the files
    # anew. The chain is staggered with startdelay rather than `stonewall`: fio 3.33 idles
    # ~0.23 s between stonewalled jobs, startdelay-ed ones follow each other within ~5 ms.
    parts = max(1, round(seconds / reopen))
    part = seconds / parts
    lines: list[str] = []
    for i in range(parts):
        # A distinct seed per part: with fio's default seed every part would repeat the same
        # offsets and read them from the page cache.
        lines += [f"[{name}.{i}]", *options, f"startdelay={round(i * part * 1000)}ms",
                  "time_based=1", f"runtime={_ms(part)}ms",
                  f"randseed={seed * 100_000 + i + 1}", ""]
    return lines


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def job_file(pattern: Pattern, directory: Path, files: int, file_bytes: int,
             seconds: float, reopen: float) -> str:
    """fio job file reading ``pattern`` from ``data.0`` .. ``data.<files-1>`` in ``directory``.

    Each stream re-opens its files while it runs, so a changed read_ahead_kb reaches it:
    sequential streams at every file, random streams every ``reopen`` seconds.
    """
    lines = ["[global]", f"directory={directory}", f"filesize={file_bytes}",
             # Keep the page cache between jobs, as a long-running application would; fio's
             # default drops the cache of the job's files at every job start.
             "invalidate=0",
             "allow_file_create=0",  # never lay out (write) files when reading
             *_job_options(pattern.fio_args), ""]
    shared, streams = _job_options(pattern.fio_args), len(pattern.streams)
    for k, extra in enumerate(pattern.streams):
        own = _job_options(extra)
        options = [*own, *_stream_files(files, k, streams, file_bytes)]
        if _is_random([*shared, *own]):
            lines += _random_stream(f"s{k}", options, seconds, reopen, k)
        else:
            lines += _sequential_stream(f"s{k}", options, seconds)
    return "\n".join(lines)


def parse_fio_json(text: str, pattern: str, started: float) -> FioResult:
    """Sum reads over all jobs of one fio run; fio may print warnings before the JSON."""
    begin = text.find("{")
    if begin < 0:
        raise LabError(f"fio printed no JSON for {pattern!r}: {_tail(text)}")
    try:
        data, _ = json.JSONDecoder().raw_decode(text, begin)
        jobs = data["jobs"]
        failed = [job["jobname"] for job in jobs if job.get("error")]
        io_bytes = sum(int(job["read"]["io_bytes"]) for job in jobs)
        ios = sum(int(job["read"]["total_ios"]) for job in jobs)
        ended = data["timestamp_ms"] / 1000  # taken when fio writes its report, after the jobs
    except (ValueError, KeyError, TypeError) as err:
        raise LabError(f"unexpected fio JSON for {pattern!r}: {err!r}") from err
    if failed:
        raise LabError(f"fio jobs failed for {pattern!r}: {', '.join(failed)}")
    return FioResult(pattern, max(ended - started, 1e-3), io_bytes, ios)


class FioRun:
    """One fio process running a pattern inside the lab's cgroup."""

    def __init__(self, proc: subprocess.Popen[bytes], pattern: str, started: float,
                 output: Path, errors: Path) -> None:
        self._proc = proc
        self.pattern = pattern
        self.started = started  # epoch seconds, just before fio was started
        self._output = output
        self._errors = errors

    @property
    def pid(self) -> int:
        return self._proc.pid

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait(self, timeout: float | None = None) -> FioResult:
        """Wait for fio to finish and return what it read; fio failures raise LabError."""
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired as err:
            raise LabError(f"fio ({self.pattern}) still running after {timeout} s") from err
        if code != 0:
            stderr = self._errors.read_text(errors="replace") if self._errors.exists() else ""
            raise LabError(f"fio ({self.pattern}) exited with {code}: {_tail(stderr)}")
        return parse_fio_json(self._output.read_text(errors="replace"), self.pattern,
                              self.started)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM our fio process (fio then stops its job processes), SIGKILL if it hangs."""
        if self._proc.poll() is not None:
            return
        self._proc.terminate()  # Popen signals only its own, not yet reaped, pid
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# --------------------------------------------------------------------------- the lab


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError as err:  # someone put files there meanwhile: theirs to keep
        warnings.warn(f"lab workdir {path} left in place: {err.strerror}", stacklevel=2)


class Lab:
    """A dataset on a loop device, read by fio inside a small memory cgroup.

    ``device=None`` creates a backing file in ``workdir``, a loop device, ext4 and a mount.
    ``device="loopN"`` uses an attached loop device with a mounted filesystem and puts the
    dataset in its ``mltune-dataset`` directory. Use as a context manager: everything the lab
    creates or changes (loop device, mount, files, cgroup, read_ahead_kb) is undone on exit.
    ``original_read_ahead_kb`` is the device's value when the lab was entered.
    """

    def __init__(self, workdir: Path, size_mib: int = 2048, files: int = 64,
                 mem_limit_mib: int = 256, device: str | None = None) -> None:
        if files < 1 or size_mib < files:
            raise ValueError(f"need at least 1 MiB per file: size_mib={size_mib}, files={files}")
        if mem_limit_mib < 16:
            raise ValueError(f"mem_limit_mib={mem_limit_mib} is too small for fio itself")
        self._workdir = Path(workdir)
        self._files = files
        self._file_bytes = size_mib // files * MIB
        self._mem_limit = mem_limit_mib * MIB
        self._given = loop_name(device) if device is not None else None
        self._stack: ExitStack | None = None
        self._device: str | None = None
        self._dataset: Path | None = None
        self._cgroup: Path | None = None
        self._jobs: Path | None = None
        self._runs: list[FioRun] = []
        self._serial = 0
        self.original_read_ahead_kb: int | None = None

    # -- lifecycle

    def __enter__(self) -> Lab:
        if self._stack is not None:
            raise LabError("this lab is already set up")
        stack = ExitStack()
        try:
            self._setup(stack)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                stack.close()  # runs every callback even if one fails, newest first
        finally:
            self._device = self._dataset = self._cgroup = self._jobs = None

    def _setup(self, stack: ExitStack) -> None:
        check_tools()
        if not self._workdir.exists():
            # Created here, removed here (the first callback runs last); what else was made
            # above it (parents=True) is left, as is a workdir that was there already.
            self._workdir.mkdir(parents=True)
            stack.callback(_rmdir_if_empty, self._workdir)
        self._jobs = Path(tempfile.mkdtemp(prefix="mltune-lab-jobs-", dir=self._workdir))
        stack.callback(shutil.rmtree, self._jobs)
        if self._given is None:
            mount_point = self._own_device(stack)
        else:
            mount_point, self._device = mount_of_loop(self._given), self._given
        self.original_read_ahead_kb = self.get_read_ahead_kb()
        stack.callback(self._restore_read_ahead)
        self._dataset = self._make_dataset(stack, mount_point)
        self._cgroup = self._make_cgroup(stack)
        stack.callback(self._stop_runs)

    def _own_device(self, stack: ExitStack) -> Path:
        home = Path(tempfile.mkdtemp(prefix="mltune-lab-", dir=self._workdir))
        stack.callback(home.rmdir)
        backing = home / "backing.img"
        data = self._files * self._file_bytes
        with backing.open("wb") as handle:  # sparse; room for ext4's journal and inode tables
            handle.truncate(data + data // 8 + 128 * MIB)
        stack.callback(backing.unlink)
        self._device = _attach_loop(backing)
        stack.callback(_detach_loop, self._device)
        _run(["mkfs.ext4", "-q", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1",
              f"/dev/{self._device}"], f"mkfs.ext4 on /dev/{self._device}")
        mount_point = home / "mnt"
        mount_point.mkdir()
        stack.callback(mount_point.rmdir)
        # noinit_itable: with lazy_itable_init, ext4lazyinit would otherwise zero the inode
        # tables in the background (~40 MB of writes) while the first phases are measured.
        _run(["mount", "-t", "ext4", "-o", "noinit_itable", f"/dev/{self._device}",
              str(mount_point)], f"mounting /dev/{self._device}")
        stack.callback(_unmount, mount_point)
        return mount_point

    def _make_dataset(self, stack: ExitStack, mount_point: Path) -> Path:
        dataset = mount_point / "mltune-dataset"
        try:
            dataset.mkdir()
        except FileExistsError as err:
            raise LabError(f"{dataset} already exists; remove it if an interrupted run "
                           "left it behind") from err
        stack.callback(shutil.rmtree, dataset)
        free = shutil.disk_usage(mount_point).free
        if free < self._files * self._file_bytes:
            raise LabError(f"{mount_point} has {free // MIB} MiB free, the dataset needs "
                           f"{self._files * self._file_bytes // MIB} MiB")
        # Direct writes: the dataset starts out of the page cache, and quickly (~1 s for 2 GiB).
        _run(["fio", "--name=dataset", f"--directory={dataset}", "--filename_format=data.$filenum",
              f"--nrfiles={self._files}", f"--filesize={self._file_bytes}",
              f"--size={self._files * self._file_bytes}", "--rw=write", "--bs=1M", "--direct=1",
              "--ioengine=psync"], "writing the dataset")
        os.sync()
        return dataset

    def _make_cgroup(self, stack: ExitStack) -> Path:
        root = find_memory_cgroup_root(_mounts())
        if root.needs_memory_enabled:
            _write(root.path / "cgroup.subtree_control", "+memory")
            stack.callback(_disable_memory_controller, root.path)
        base = f"mltune-lab-{os.getpid()}"
        for attempt in range(100):
            path = root.path / (base if attempt == 0 else f"{base}-{attempt}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
            except OSError as err:
                raise LabError(f"cannot create cgroup {path}: {err.strerror}") from err
        else:
            raise LabError(f"cannot find a free cgroup name {base}-N under {root.path}")
        stack.callback(_remove_cgroup, path)
        _write(path / root.limit_file, str(self._mem_limit))
        return path

    def _stop_runs(self) -> None:
        runs, self._runs = self._runs, []
        for run in runs:
            run.stop()

    def _restore_read_ahead(self) -> None:
        original = self.original_read_ahead_kb
        if original is not None and self.get_read_ahead_kb() != original:
            self.set_read_ahead_kb(original)

    # -- what the lab offers

    @property
    def device(self) -> str:
        return self._need(self._device)

    @property
    def dataset_dir(self) -> Path:
        return self._need(self._dataset)

    @property
    def cgroup_path(self) -> Path:
        return self._need(self._cgroup)

    @staticmethod
    def _need(value: _T | None) -> _T:
        if value is None:
            raise LabError("the lab is not set up: use it as `with Lab(...) as lab:`")
        return value

    def _read_ahead_path(self) -> Path:
        return Path("/sys/block") / self.device / "queue" / "read_ahead_kb"

    def get_read_ahead_kb(self) -> int:
        return int(_read(self._read_ahead_path()))

    def set_read_ahead_kb(self, kb: int) -> None:
        """Write read_ahead_kb and read it back; the original is restored on exit."""
        if kb < 0:
            raise ValueError(f"read_ahead_kb must be >= 0, not {kb}")
        _write(self._read_ahead_path(), str(kb))
        now = self.get_read_ahead_kb()
        if now != kb:  # the kernel keeps whole pages: 6 reads back as 4
            raise LabError(f"/dev/{self.device}: wrote read_ahead_kb={kb}, reads back {now}")

    def drop_caches(self) -> None:
        drop_caches()

    def reclaim(self) -> float:
        """Reclaim the page cache charged to the lab's cgroup (``memory.reclaim`` on v2,
        ``memory.force_empty`` on v1); returns the seconds it took. What one phase left in
        the cgroup then costs the next nothing: after mmap random reads at 4 KiB (hot
        mapped pages) streams at 2048 read 652 MB/s, 1099 with this in between, against
        920 and 1061 after the same reads at 2048 (`python bench/carryover.py`, this host)."""
        cgroup = self.cgroup_path
        t0 = time.monotonic()
        if (cgroup / "memory.force_empty").exists():
            _write(cgroup / "memory.force_empty", "0")
        else:
            try:
                (cgroup / "memory.reclaim").write_text(str(1 << 40))
            except OSError as err:
                # EAGAIN: it reclaimed less than asked, which asking for "all" expects.
                if err.errno != errno.EAGAIN:
                    raise LabError(f"{cgroup}/memory.reclaim: {err.strerror}") from err
        return time.monotonic() - t0

    def start(self, pattern: str, seconds: float, reopen: float = 0.5) -> FioRun:
        """Start fio for ``pattern`` in the lab's cgroup and return at once; its random streams
        re-open their files every ``reopen`` seconds."""
        if pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {pattern!r}; known: {', '.join(PATTERNS)}")
        if seconds <= 0 or reopen <= 0:
            raise ValueError(f"seconds and reopen must be > 0 (got {seconds}, {reopen})")
        if len(PATTERNS[pattern].streams) > self._files:
            raise ValueError(f"{pattern!r} needs at least {len(PATTERNS[pattern].streams)} files")
        self._serial += 1
        stem = self._need(self._jobs) / f"{self._serial:04d}-{pattern}"
        job, output, errors = (stem.with_suffix(s) for s in (".fio", ".json", ".err"))
        job.write_text(job_file(PATTERNS[pattern], self.dataset_dir, self._files,
                                self._file_bytes, seconds, reopen))
        # The shell joins the cgroup, then becomes fio: fio and its job processes are inside
        # from their first instruction, and nothing else of ours is.
        cmd = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.cgroup_path / "cgroup.procs"),
               "fio", "--output-format=json", f"--output={output}", str(job)]
        started = time.time()
        with errors.open("wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err)
        run = FioRun(proc, pattern, started, output, errors)
        self._runs = [r for r in self._runs if r.running()] + [run]
        return run

    def run(self, pattern: str, seconds: float, reopen: float = 0.5) -> FioResult:
        """Run ``pattern`` for ``seconds`` and return what it read."""
        run = self.start(pattern, seconds, reopen)
        try:
            return run.wait()
        finally:
            run.stop()
