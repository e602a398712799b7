"""Page-cache trace parsing: a real 6.18 buffer, synthetic access patterns, and the sampler's
handling of a bounded read that ends mid-line."""

from __future__ import annotations

import math
import os
import random
import time
from types import SimpleNamespace

import pytest
from mltune import tracing
from mltune.sysfs import Root
from mltune.tracing import (
    NEAR_GAP_PAGES,
    STREAM_GAP_PAGES,
    TraceSampler,
    kernel_dev,
    summarize,
)

from tests.conftest import LINUX_618

# Read once at import: pyfakefs hides the real tree during the sampler tests.
CAPTURE = (LINUX_618 / "trace" / "dd-then-mmap.txt").read_text(encoding="ascii")
VDA = (254, 0)
LOOP0 = (7, 0)


# Lines in the kernel's own format (see the print fmt of each event).
def get_pages(ts: float, ino: int, page: int, pages: int = 1, dev: str = "7:0") -> str:
    start, end = page << 12, ((page + pages) << 12) - 1
    return (f"             fio-4242    [001] .....  {ts:.6f}: mm_filemap_get_pages: "
            f"dev={dev} ino={ino:x} ofs={start}-{end}")


def fault(ts: float, ino: int, page: int, dev: str = "7:0") -> str:
    return (f"             fio-4242    [000] .....  {ts:.6f}: mm_filemap_fault: "
            f"dev={dev} ino={ino:x} ofs={page << 12}")


def ra(ts: float, kind: str, ino: int, ra_pages: int, dev: str = "7:0") -> str:
    return (f"             fio-4242    [000] .....  {ts:.6f}: page_cache_{kind}_ra: dev={dev} "
            f"ino={ino:x} index=0 req_count=1 order=0 size=4 async_size=3 "
            f"ra_pages={ra_pages} mmap_miss=0 prev_pos=-1")


def text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


# -- the real buffer -------------------------------------------------------------------


def test_captured_dd_then_mmap_buffer() -> None:
    stats = summarize(CAPTURE)
    assert set(stats) == {VDA}  # the instance filtered on s_dev of vda
    s = stats[VDA]
    # dd's 20 read() calls + one from fio; 5 mmap faults from python + 2 from fio.
    assert (s.reads, s.faults, s.sync_ra, s.async_ra) == (21, 7, 1, 3)
    assert s.req_pages == 1.0  # dd bs=4k: one page per read()
    assert s.files == 1  # the filter kept one inode
    assert s.ra_pages == 2048  # vda's read_ahead_kb 8192 = 2048 pages
    # The dd stream dominates; the faults megabytes apart are not sequential.
    assert 0.6 < s.seq_frac < 0.95
    assert s.near_frac <= s.seq_frac
    assert s.rate > 0


# -- synthetic patterns ----------------------------------------------------------------


def test_sequential_read_stream_is_fully_sequential_and_near() -> None:
    lines = [get_pages(100 + i * 1e-3, 0x1b, i * 32, pages=32) for i in range(200)]
    s = summarize(text(lines))[LOOP0]
    assert s.seq_frac == pytest.approx(1.0)
    assert s.near_frac == pytest.approx(1.0)
    assert s.log_gap == pytest.approx(0.0)
    assert s.req_pages == 32
    assert s.rate == pytest.approx(1000, rel=1e-6)


def test_random_faults_have_low_seq_frac_and_large_gaps() -> None:
    rng = random.Random(7)
    pages = 1 << 18  # a 1 GiB file
    lines = [fault(100 + i * 1e-3, 0x2c, rng.randrange(pages)) for i in range(300)]
    s = summarize(text(lines))[LOOP0]
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
    s = summarize(text(lines))[LOOP0]
    # Only the first access of readers 2..4 is a jump: 3 of 199 gaps.
    assert s.seq_frac == pytest.approx(196 / 199)
    assert s.files == 1


def test_more_interleaved_streams_than_heads_fall_back_to_random() -> None:
    # The accumulator keeps 8 stream heads per inode; 16 round-robin readers overflow it.
    lines = []
    for step in range(20):
        for k in range(16):
            lines.append(get_pages(100 + (step * 16 + k) * 1e-4, 0x3d, k * 100_000 + step, 1))
    assert summarize(text(lines))[LOOP0].seq_frac < 0.1


def test_sequential_mmap_faults_one_window_apart_are_a_stream_not_near() -> None:
    # A sequential mmap reader faults once per readahead window (the window is mapped at
    # once); the async readahead events of that file tell the window.
    window = STREAM_GAP_PAGES // 2
    assert window > NEAR_GAP_PAGES
    lines = [ra(99.9, "async", 0x4e, window)]
    lines += [fault(100 + i * 1e-3, 0x4e, i * window) for i in range(100)]
    s = summarize(text(lines))[LOOP0]
    assert s.seq_frac == pytest.approx(1.0)
    assert s.near_frac == pytest.approx(0.0)
    assert s.run_pages >= 99 * window


def test_random_faults_within_a_large_tolerance_are_not_a_stream() -> None:
    # mmap random reads show no readahead events: without a window, jumps of hundreds of
    # pages are jumps, however many faults a file gets.
    lines = [fault(100 + i * 1e-3, 0x4e, (i * 7919 * 37) % 8192) for i in range(200)]
    s = summarize(text(lines))[LOOP0]
    assert s.seq_frac < 0.15
    assert s.run_pages < 4


def test_sub_page_reads_of_the_same_page_count_as_sequential() -> None:
    # read(fd, buf, 512) in a loop: the kernel reports the same page index eight times.
    lines = [get_pages(100 + i * 1e-4, 0x5f, i // 8) for i in range(64)]
    assert summarize(text(lines))[LOOP0].seq_frac == pytest.approx(1.0)


def test_devices_and_files_are_kept_apart() -> None:
    lines = [get_pages(100 + i * 1e-3, 0x10 + i % 3, i // 3, dev="7:0") for i in range(30)]
    lines += [fault(100 + i * 1e-3, 0x99, i * 5000, dev="254:0") for i in range(10)]
    stats = summarize(text(lines))
    assert set(stats) == {LOOP0, VDA}
    assert stats[LOOP0].files == 3
    assert stats[LOOP0].seq_frac == pytest.approx(1.0)  # three files, each sequential
    assert stats[VDA].seq_frac == 0.0


def test_readahead_events_are_counted_and_ra_pages_is_the_median() -> None:
    lines = [get_pages(100.0, 0x1, 0), get_pages(100.001, 0x1, 1),
             ra(100.002, "sync", 0x1, 32), ra(100.003, "async", 0x1, 32),
             ra(100.004, "async", 0x1, 1024)]
    s = summarize(text(lines))[LOOP0]
    assert (s.sync_ra, s.async_ra) == (1, 2)
    assert s.ra_pages == 32


def test_one_access_gives_no_rate_and_no_pattern() -> None:
    s = summarize(text([get_pages(100.0, 0x1, 0)]))[LOOP0]
    assert s.accesses == 1
    assert math.isnan(s.rate) and math.isnan(s.seq_frac) and math.isnan(s.log_gap)


def test_empty_buffer_and_header_only_give_nothing() -> None:
    header = "".join(CAPTURE.splitlines(True)[:12])
    assert summarize("") == {}
    assert summarize(header) == {}


def test_kernel_dev_uses_20_minor_bits() -> None:
    # The number tracefs filters compare s_dev with (MINORBITS = 20, not the user-space 8).
    assert kernel_dev(254, 0) == 266338304
    assert kernel_dev(7, 1) == 7340033


# -- the sampler's bounded read ------------------------------------------------------------


def _sampler_with_buffer(root: Root, monkeypatch: pytest.MonkeyPatch, windows: list[str],
                         read_limit: int) -> TraceSampler:
    """A sampler whose instance exists in the fake tree; each window 'records' the next text,
    as the kernel fills the buffer while the sampler sleeps."""
    sampler = TraceSampler(root, {"vda": [VDA]}, window_s=0.0, read_limit=read_limit)
    inst = root.path(sampler.instance)
    os.makedirs(inst)
    for name in ("trace_pipe", "tracing_on"):
        (inst / name).write_text("")
    pending = list(windows)

    def record(_: float) -> None:
        # trace_pipe is consumed by reading; a plain file stands in, rewritten per window.
        (inst / "trace_pipe").write_text(pending.pop(0), encoding="ascii")

    monkeypatch.setattr(tracing, "time", SimpleNamespace(sleep=record,
                                                         perf_counter=time.perf_counter))
    return sampler


def test_bounded_read_ending_mid_line_drops_the_partial_line(
        fake_root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    cut = CAPTURE.index("ofs=77824-81919") + len("ofs=77824-8")  # would parse as backwards
    monkeypatch.setattr(tracing, "SPARSE_ACCESSES", 1)  # one window is enough here
    sampler = _sampler_with_buffer(fake_root, monkeypatch, [CAPTURE], read_limit=cut)
    out = sampler.sample()
    whole_lines = CAPTURE[: CAPTURE.rindex("\n", 0, cut) + 1]
    assert out["vda"] == summarize(whole_lines)[VDA]
    assert out["vda"].reads == 19  # dd's 20th read() was cut off
    assert sampler.windows == 1
    assert fake_root.read(f"{sampler.instance}/tracing_on") == "0"


def test_sparse_first_window_is_followed_by_a_longer_one(
        fake_root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    # A slow random reader shows one access per file in 50 ms: too few to judge.
    busy = text([get_pages(100 + i * 1e-3, 0x1, i, dev="254:0") for i in range(10)])
    sampler = _sampler_with_buffer(fake_root, monkeypatch, ["", busy], read_limit=1 << 16)
    out = sampler.sample()
    assert sampler.windows == 1 + tracing.SPARSE_FACTOR
    assert out["vda"].reads == 10


def test_events_of_untracked_devices_are_ignored(
        fake_root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = text([get_pages(100 + i * 1e-3, 0x1, i, dev="7:0") for i in range(10)])
    sampler = _sampler_with_buffer(fake_root, monkeypatch, [loop, loop], read_limit=1 << 16)
    assert sampler.sample() == {}
