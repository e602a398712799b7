"""Page-cache trace features: a real 6.18 buffer, synthetic access patterns (through the
ring-buffer pages the kernel hands out), and the sampler: its instance, its windows and the
text limit the features are defined on."""

from __future__ import annotations

import math
import os
import random

import pytest
from mltune import tracing
from mltune.errors import MltuneError
from mltune.ringbuf import ASYNC_RA, FAULT, GET_PAGES, SYNC_RA, decode, decoders, parse_format
from mltune.sysfs import Root
from mltune.tracefs import TracefsSource
from mltune.tracing import (
    EVENTS,
    NEAR_GAP_PAGES,
    STREAM_GAP_PAGES,
    TRACEFS,
    TraceSampler,
    kernel_dev,
    summarize,
)

from tests.conftest import LINUX_618
from tests.tracing import kernel, reference
from tests.tracing.kernel import KEvent

# Read once at import: pyfakefs hides the real tree during the sampler tests.
CAPTURE = (LINUX_618 / "trace" / "dd-then-mmap.txt").read_text(encoding="ascii")
RAW = LINUX_618 / "trace" / "raw"
FORMAT_TEXT = {ev: (RAW / f"{ev.replace('/', '-')}.format").read_text() for ev in EVENTS}
HEADER_PAGE = (RAW / "header_page").read_text()
FORMATS = {f.name: f for f in map(parse_format, FORMAT_TEXT.values())}
TABLE = decoders(list(FORMATS.values()))
VDA = (254, 0)
LOOP0 = (7, 0)


def _dev(dev: str) -> int:
    major, minor = dev.split(":")
    return kernel_dev(int(major), int(minor))


def get_pages(ts: float, ino: int, page: int, pages: int = 1, dev: str = "7:0") -> KEvent:
    return KEvent(round(ts * 1e9), 0, GET_PAGES, (ino, _dev(dev), page, page + pages - 1))


def fault(ts: float, ino: int, page: int, dev: str = "7:0") -> KEvent:
    return KEvent(round(ts * 1e9), 0, FAULT, (ino, _dev(dev), page))


def ra(ts: float, kind: str, ino: int, ra_pages: int, dev: str = "7:0") -> KEvent:
    name = SYNC_RA if kind == "sync" else ASYNC_RA
    return KEvent(round(ts * 1e9), 0, name, (ino, _dev(dev), 0, 0, 4, 3, ra_pages, 0, -1, 1))


def stats(events: list[KEvent], limit: int = 1 << 30) -> dict[tuple[int, int], tracing.TraceStats]:
    """What the sampler computes from these events (no text limit unless given)."""
    return summarize(decode(kernel.pages(events, FORMATS), TABLE, limit))


# -- the real buffer -------------------------------------------------------------------


def test_captured_dd_then_mmap_buffer() -> None:
    s = stats(kernel.from_text(CAPTURE))
    assert set(s) == {VDA}  # the instance filtered on s_dev of vda
    s = s[VDA]
    # dd's 20 read() calls + one from fio; 5 mmap faults from python + 2 from fio.
    assert (s.reads, s.faults, s.sync_ra, s.async_ra) == (21, 7, 1, 3)
    assert s.req_pages == 1.0  # dd bs=4k: one page per read()
    assert s.files == 1  # the filter kept one inode
    assert s.ra_pages == 2048  # vda's read_ahead_kb 8192 = 2048 pages
    # The dd stream dominates; the faults megabytes apart are not sequential.
    assert 0.6 < s.seq_frac < 0.95
    assert s.near_frac <= s.seq_frac
    assert s.rate > 0
    assert reference.equal(stats(kernel.from_text(CAPTURE)), reference.summarize(CAPTURE))


# -- synthetic patterns ----------------------------------------------------------------


def test_sequential_read_stream_is_fully_sequential_and_near() -> None:
    lines = [get_pages(100 + i * 1e-3, 0x1b, i * 32, pages=32) for i in range(200)]
    s = stats(lines)[LOOP0]
    assert s.seq_frac == pytest.approx(1.0)
    assert s.near_frac == pytest.approx(1.0)
    assert s.log_gap == pytest.approx(0.0)
    assert s.req_pages == 32
    assert s.rate == pytest.approx(1000, rel=1e-6)


def test_random_faults_have_low_seq_frac_and_large_gaps() -> None:
    rng = random.Random(7)
    pages = 1 << 18  # a 1 GiB file
    lines = [fault(100 + i * 1e-3, 0x2c, rng.randrange(pages)) for i in range(300)]
    s = stats(lines)[LOOP0]
    assert s.faults == 300 and s.reads == 0
    assert s.seq_frac < 0.1
    assert s.near_frac < 0.05
    assert s.log_gap > 12  # mean jump of thousands of pages
    assert math.isnan(s.req_pages)  # no read() calls


def test_interleaved_streams_on_one_inode_are_still_sequential() -> None:
    # Four readers of one file, each sequential from its own offset, interleaved in time.
    starts = (0, 100_000, 200_000, 300_000)
    lines = []
    for step in range(50):
        for k, base in enumerate(starts):
            lines.append(get_pages(100 + (step * 4 + k) * 1e-4, 0x3d, base + step * 8, pages=8))
    s = stats(lines)[LOOP0]
    # Only the first access of readers 2..4 is a jump: 3 of 199 gaps.
    assert s.seq_frac == pytest.approx(196 / 199)
    assert s.files == 1


def test_more_interleaved_streams_than_heads_fall_back_to_random() -> None:
    # The accumulator keeps 8 stream heads per inode; 16 round-robin readers overflow it.
    lines = []
    for step in range(20):
        for k in range(16):
            lines.append(get_pages(100 + (step * 16 + k) * 1e-4, 0x3d, k * 100_000 + step, 1))
    assert stats(lines)[LOOP0].seq_frac < 0.1


def test_sequential_mmap_faults_one_window_apart_are_a_stream_not_near() -> None:
    # A sequential mmap reader faults once per readahead window (the window is mapped at
    # once); the async readahead events of that file tell the window.
    window = STREAM_GAP_PAGES // 2
    assert window > NEAR_GAP_PAGES
    lines = [ra(99.9, "async", 0x4e, window)]
    lines += [fault(100 + i * 1e-3, 0x4e, i * window) for i in range(100)]
    s = stats(lines)[LOOP0]
    assert s.seq_frac == pytest.approx(1.0)
    assert s.near_frac == pytest.approx(0.0)
    assert s.run_pages >= 99 * window


def test_random_faults_within_a_large_tolerance_are_not_a_stream() -> None:
    # mmap random reads show no readahead events: without a window, jumps of hundreds of
    # pages are jumps, however many faults a file gets.
    lines = [fault(100 + i * 1e-3, 0x4e, (i * 7919 * 37) % 8192) for i in range(200)]
    s = stats(lines)[LOOP0]
    assert s.seq_frac < 0.15
    assert s.run_pages < 4


def test_sub_page_reads_of_the_same_page_count_as_sequential() -> None:
    # read(fd, buf, 512) in a loop: the kernel reports the same page index eight times.
    lines = [get_pages(100 + i * 1e-4, 0x5f, i // 8) for i in range(64)]
    assert stats(lines)[LOOP0].seq_frac == pytest.approx(1.0)


def test_devices_and_files_are_kept_apart() -> None:
    lines = [get_pages(100 + i * 1e-3, 0x10 + i % 3, i // 3, dev="7:0") for i in range(30)]
    # vda's reader runs at the same time on the other CPU.
    lines += [fault(100 + i * 1e-3, 0x99, i * 5000, dev="254:0")._replace(cpu=1)
              for i in range(10)]
    out = stats(lines)
    assert set(out) == {LOOP0, VDA}
    assert out[LOOP0].files == 3
    assert out[LOOP0].seq_frac == pytest.approx(1.0)  # three files, each sequential
    assert out[VDA].seq_frac == 0.0


def test_readahead_events_are_counted_and_ra_pages_is_the_median() -> None:
    lines = [get_pages(100.0, 0x1, 0), get_pages(100.001, 0x1, 1),
             ra(100.002, "sync", 0x1, 32), ra(100.003, "async", 0x1, 32),
             ra(100.004, "async", 0x1, 1024)]
    s = stats(lines)[LOOP0]
    assert (s.sync_ra, s.async_ra) == (1, 2)
    assert s.ra_pages == 32


def test_one_access_gives_no_rate_and_no_pattern() -> None:
    s = stats([get_pages(100.0, 0x1, 0)])[LOOP0]
    assert s.accesses == 1
    assert math.isnan(s.rate) and math.isnan(s.seq_frac) and math.isnan(s.log_gap)


def test_empty_buffer_gives_nothing() -> None:
    assert stats([]) == {}
    assert summarize(decode([[], []], TABLE, 1 << 20)) == {}


def test_kernel_dev_uses_20_minor_bits() -> None:
    # The number tracefs filters compare s_dev with (MINORBITS = 20, not the user-space 8).
    assert kernel_dev(254, 0) == 266338304
    assert kernel_dev(7, 1) == 7340033


# -- the sampler -----------------------------------------------------------------------------


@pytest.fixture
def tracefs(fake_root: Root, fs) -> Root:
    """tracefs as a 6.18 kernel shows it, with this process's instance already there (the
    kernel creates its files on mkdir; pyfakefs does not)."""
    base = fake_root.path(TRACEFS)
    fs.create_file(base / "events" / "header_page", contents=HEADER_PAGE)
    for ev, text in FORMAT_TEXT.items():
        fs.create_file(base / "events" / ev / "format", contents=text)
    inst = base / "instances" / f"mltune-{os.getpid()}"
    for name in ("tracing_on", "buffer_size_kb", "options/overwrite", "per_cpu/cpu0/trace_pipe_raw",
                 "per_cpu/cpu1/trace_pipe_raw"):
        fs.create_file(inst / name)
    fs.create_file(inst / "buffer_subbuf_size_kb", contents="4")
    for ev in EVENTS:
        fs.create_file(inst / "events" / ev / "filter")
        fs.create_file(inst / "events" / ev / "enable")
    fs.create_dir(f"/proc/{os.getpid()}")  # this process is alive: its instance is not stale
    return fake_root


def _sampler(root: Root, monkeypatch: pytest.MonkeyPatch, windows: list[list[KEvent]],
             read_limit: int = tracing.TEXT_LIMIT) -> TraceSampler:
    """An open sampler; each window 'records' the next events, as the kernel fills the
    per-CPU buffers while the sampler sleeps."""
    sampler = TraceSampler(root, {"vda": [VDA]}, window_s=0.0, read_limit=read_limit)
    sampler.open()
    pipes = root.path(f"{sampler.instance}/per_cpu")
    pending = list(windows)

    def record(_: float) -> None:
        # A plain file keeps every write where tracefs takes each on its own: the last counts.
        assert root.read(f"{sampler.instance}/tracing_on").endswith("1")
        for cpu, pages in enumerate(kernel.pages(pending.pop(0), FORMATS)):
            with open(pipes / f"cpu{cpu}" / "trace_pipe_raw", "ab") as f:
                f.write(b"".join(pages))  # read through the sampler's open fd

    monkeypatch.setattr(TracefsSource, "wait", lambda self, seconds: record(seconds))
    return sampler


def test_open_sets_up_a_small_filtered_non_overwriting_instance(tracefs: Root) -> None:
    sampler = TraceSampler(tracefs, {"vda": [VDA], "loop0": [LOOP0, (7, 1)]})
    sampler.open()
    inst = sampler.instance
    assert tracefs.read(f"{inst}/buffer_size_kb") == "8"
    assert tracefs.read(f"{inst}/options/overwrite") == "0"
    assert tracefs.read(f"{inst}/tracing_on") == "0"
    for ev in EVENTS:
        assert tracefs.read(f"{inst}/events/{ev}/enable") == "1"
        assert tracefs.read(f"{inst}/events/{ev}/filter") == \
            "s_dev == 266338304 || s_dev == 7340032 || s_dev == 7340033"
    assert len(sampler.source._pipes) == 2


def test_a_kernel_printing_another_format_is_refused_at_open(tracefs: Root) -> None:
    # Which events the features cover depends on the text the kernel would print.
    path = tracefs.path(f"{TRACEFS}/events/{EVENTS[0]}/format")
    path.write_text(path.read_text().replace("ofs=%lld-%lld", "pos=%lld-%lld"))
    with pytest.raises(MltuneError, match="print format differs"):
        TraceSampler(tracefs, {"vda": [VDA]}).open()


def test_the_text_limit_ends_the_window_where_trace_pipe_would_have(
        tracefs: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    cut = CAPTURE.index("ofs=77824-81919") + len("ofs=77824-8")  # mid-line
    header = len("".join(CAPTURE.splitlines(True)[:12]))
    monkeypatch.setattr(tracing, "SPARSE_ACCESSES", 1)  # one window is enough here
    events = kernel.from_text(CAPTURE)
    sampler = _sampler(tracefs, monkeypatch, [events], read_limit=cut - header)
    out = sampler.sample()
    whole_lines = CAPTURE[: CAPTURE.rindex("\n", 0, cut) + 1]
    assert reference.equal(out, {"vda": reference.summarize(whole_lines)[VDA]})
    assert out["vda"].reads == 19  # dd's 20th read() was cut off
    assert sampler.windows == 1
    assert tracefs.read(f"{sampler.instance}/tracing_on").endswith("0")


def test_events_on_two_cpus_are_merged_in_time_order(
        tracefs: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    # One reader migrating between CPUs: sequential only if read in time order.
    events = [KEvent(e.ts, i % 2, e.kind, e.values)
              for i, e in enumerate(get_pages(100 + i * 1e-3, 0x1, i, dev="254:0")
                                    for i in range(80))]
    out = _sampler(tracefs, monkeypatch, [events]).sample()
    assert out["vda"].seq_frac == 1.0 and out["vda"].reads == 80


def test_sparse_first_window_is_followed_by_a_longer_one(
        tracefs: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    # A slow random reader shows one access per file in 50 ms: too few to judge.
    busy = [get_pages(100 + i * 1e-3, 0x1, i, dev="254:0") for i in range(10)]
    sampler = _sampler(tracefs, monkeypatch, [[], busy])
    out = sampler.sample()
    assert sampler.windows == 1 + tracing.SPARSE_FACTOR
    assert out["vda"].reads == 10


def test_events_of_untracked_devices_are_ignored(
        tracefs: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = [get_pages(100 + i * 1e-3, 0x1, i, dev="7:0") for i in range(10)]
    assert _sampler(tracefs, monkeypatch, [loop, loop]).sample() == {}


def test_close_lets_go_of_the_instance_files(tracefs: Root) -> None:
    # tracefs refuses to remove an instance whose files are open (EBUSY).
    sampler = TraceSampler(tracefs, {"vda": [VDA]})
    sampler.open()
    fds = [sampler.source._on, *sampler.source._pipes]
    with pytest.raises(MltuneError):
        sampler.close()  # pyfakefs will not rmdir a directory that has files
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_sparse_decision_counts_the_busiest_partition_of_a_disk(
        tracefs: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    # vda1 and vda2 both read: the target keeps the busier one, and so does the count
    # that decides on a longer window (40 < 64, though the disk saw 80).
    two = [get_pages(100 + i * 1e-3, 0x1, i, dev=f"254:{1 + i % 2}") for i in range(80)]
    busy = [get_pages(101 + i * 1e-3, 0x1, i, dev="254:1") for i in range(70)]
    sampler = TraceSampler(tracefs, {"vda": [VDA, (254, 1), (254, 2)]}, window_s=0.0)
    sampler.open()
    pending = [two, busy]
    pipes = tracefs.path(f"{sampler.instance}/per_cpu")

    def record(_: float) -> None:
        for cpu, pages in enumerate(kernel.pages(pending.pop(0), FORMATS)):
            with open(pipes / f"cpu{cpu}" / "trace_pipe_raw", "ab") as f:
                f.write(b"".join(pages))

    monkeypatch.setattr(TracefsSource, "wait", lambda self, seconds: record(seconds))
    out = sampler.sample()
    assert sampler.windows == 1 + tracing.SPARSE_FACTOR
    assert out["vda"].reads == 70


def test_a_failed_open_leaves_no_descriptor_behind(tracefs: Root,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The second CPU's pipe cannot be opened: the first one and tracing_on are closed again,
    # and the instance is removed (here pyfakefs refuses the rmdir of a non-empty directory).
    tracefs.path(f"{TRACEFS}/instances/mltune-{os.getpid()}/per_cpu/cpu1/trace_pipe_raw").unlink()
    opened: list[int] = []
    real_open = os.open

    def spy(path: object, flags: int, *a: object) -> int:
        fd = real_open(path, flags, *a)
        opened.append(fd)
        return fd

    monkeypatch.setattr(os, "open", spy)
    sampler = TraceSampler(tracefs, {"vda": [VDA]})
    with pytest.raises(MltuneError):
        sampler.open()
    assert len(opened) >= 2 and sampler.source is None
    for fd in opened:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_perf_refused_under_another_root_falls_back_or_fails(tracefs: Root) -> None:
    auto = TraceSampler(tracefs, {"vda": [(254, 0)]})
    auto.open()
    try:
        assert auto.source is not None and auto.source.name == "tracefs"
        assert "--root /host is not the running kernel's" in auto.why_not_perf
    finally:
        auto.source = None  # pyfakefs cannot remove the instance directory; not the point
    with pytest.raises(MltuneError, match="not the running kernel's"):
        TraceSampler(tracefs, {"vda": [(254, 0)]}, source="perf").open()
