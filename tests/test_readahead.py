"""The readahead driver on the 6.18 VM tree: discovery, /proc observation, plan and apply."""

from __future__ import annotations

import math
import shutil
from types import SimpleNamespace

import pytest
from mltune import config as configmod
from mltune.driver import Observation, Target
from mltune.drivers import readahead
from mltune.drivers.readahead import (
    CANDIDATES,
    DEFAULT_EXCLUDE,
    FEATURES,
    MEMINFO_EVERY_S,
    SYSTEM_EVERY_S,
    TRACE_FEATURES,
    ReadaheadDriver,
    app_kib_s,
    moved,
)
from mltune.errors import DeviceGone, MltuneError, Unparsable, WriteMismatch
from mltune.sysfs import Root
from mltune.tracing import STREAM_GAP_PAGES, TraceStats

from tests.conftest import short_id

CONFIG_EXCLUDE = configmod.defaults()["drivers"]["readahead"]["exclude"]


def names(driver: ReadaheadDriver) -> list[str]:
    return [t.name for t in driver.discover()]


def target(driver: ReadaheadDriver, name: str) -> Target:
    return next(t for t in driver.discover() if t.name == name)


class Clock:
    """Stands in for the driver's ``time`` module so rates have an exact interval."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1.7e9 + self.now


def bump_disk(root: Root, dev: str, deltas: dict[int, int]) -> None:
    """Add ``deltas`` (field index → increment) to ``/sys/block/<dev>/stat``: 0 reads,
    1 reads merged, 2 sectors read, 9 ms busy (Documentation/block/stat.rst)."""
    p = root.path(f"sys/block/{dev}/stat")
    f = p.read_text().split()
    for col, d in deltas.items():
        f[col] = str(int(f[col]) + d)
    p.write_text(" ".join(f"{int(x):8d}" for x in f) + "\n")


def bump(root: Root, rel: str, name: str, deltas: dict[int, int]) -> None:
    """Add ``deltas`` (field index → increment) to the line of ``name`` in a /proc file."""
    p = root.path(rel)
    lines = p.read_text().splitlines()
    for i, line in enumerate(lines):
        f = line.split()
        if name in f[:3]:
            for col, d in deltas.items():
                f[col] = str(int(f[col]) + d)
            lines[i] = " ".join(f)
    p.write_text("\n".join(lines) + "\n")


# -- discovery -------------------------------------------------------------------------


def test_driver_default_exclude_leaves_zram_and_unbound_loops_alone(fake_root: Root) -> None:
    assert DEFAULT_EXCLUDE == ("zram*", "ram*")
    # loop2 is unbound (size 0): nothing to tune. loop0 is the bound variant (README).
    assert names(ReadaheadDriver(fake_root, trace=False)) == ["loop0", "vda"]


def test_default_config_excludes_loop_zram_and_ram(fake_root: Root) -> None:
    assert CONFIG_EXCLUDE == ["loop*", "zram*", "ram*"]
    drv = ReadaheadDriver(fake_root, exclude=CONFIG_EXCLUDE, trace=False)
    assert names(drv) == ["vda"]


def test_include_patterns_select_devices(fake_root: Root) -> None:
    assert names(ReadaheadDriver(fake_root, include=["loop*"], trace=False)) == ["loop0"]


def test_named_devices_bypass_include_and_exclude(fake_root: Root) -> None:
    drv = ReadaheadDriver(fake_root, devices=["loop0", "zram0"], exclude=CONFIG_EXCLUDE,
                          trace=False)
    targets = drv.discover()
    assert [t.name for t in targets] == ["loop0", "zram0"]
    assert targets[0] == Target("readahead", "loop0", "sys/block/loop0/queue/read_ahead_kb",
                                "sys/block/loop0")


def test_unknown_device_error_lists_valid_ones(fake_root: Root) -> None:
    drv = ReadaheadDriver(fake_root, devices=["sdz", "vda"], trace=False)
    with pytest.raises(MltuneError) as info:
        drv.discover()
    assert str(info.value) == ("unknown device sdz; block devices with read_ahead_kb: "
                               "loop0, loop2, vda, zram0")


def test_availability_lists_targets(fake_root: Root) -> None:
    a = ReadaheadDriver(fake_root, exclude=CONFIG_EXCLUDE, trace=False).availability()
    assert (a.ok, a.reason, a.targets) == (True, "", ("vda",))


def test_host_without_block_devices_is_unavailable(fake_root: Root) -> None:
    shutil.rmtree(fake_root.path("sys/block"))
    a = ReadaheadDriver(fake_root, trace=False).availability()
    assert not a.ok
    assert "read_ahead_kb" in a.reason


def test_devnum_includes_partitions_where_filesystems_live(fake_root: Root) -> None:
    part = fake_root.path("sys/block/vda/vda1")
    part.mkdir()
    (part / "dev").write_text("254:1\n")
    assert ReadaheadDriver(fake_root)._devnum("vda") == [(254, 0), (254, 1)]


@pytest.mark.parametrize("dev", ["7" * 5000 + ":0", "254:" + "0" * 5000, "-1:0", "254:0:1",
                                 ":", "254", "\u00b2:0", "+254:0"], ids=short_id)
def test_devnum_skips_a_dev_file_that_is_no_major_minor_pair(fake_root: Root,
                                                             dev: str) -> None:
    # Found by tests/test_fuzz_kernel_files.py: str.isdigit() let 5000 digits through to
    # int(), which refuses more than 4300.
    part = fake_root.path("sys/block/vda/vda1")
    part.mkdir()
    (part / "dev").write_text(dev + "\n")
    assert ReadaheadDriver(fake_root)._devnum("vda") == [(254, 0)]


# -- observation -----------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(readahead, "time", SimpleNamespace(monotonic=c.monotonic, time=c.time))
    return c


def test_observe_without_trace_uses_proc_features_only(fake_root: Root, clock: Clock) -> None:
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=False)
    o = drv.observe(drv.discover())["vda"]
    assert o.source == "proc"
    assert o.window_s == 0.0
    assert set(o.features) == set(FEATURES)
    assert all(math.isnan(o.features[f]) for f in TRACE_FEATURES)
    assert o.features["ra_kb_log2"] == 13  # 8192 KiB
    assert o.current == 8192  # the loop takes it instead of reading the knob again
    assert o.features["psi_io_some"] == 54.26
    assert o.features["psi_mem_some"] == 3.37
    # The "full" lines too: the pressure guard reads them.
    assert o.features["psi_io_full"] == 41.09
    assert o.features["psi_mem_full"] == 2.79
    assert o.features["mem_avail_frac"] == pytest.approx(24349480 / 24684084)
    # First observation: no previous counters, so no rates yet.
    for f in ("rd_iops", "rd_mbps", "util", "majflt_s", "pgpgin_mbs", "refault_s"):
        assert math.isnan(o.features[f]), f


def test_disk_and_vm_rates_are_deltas_between_two_observations(
        fake_root: Root, clock: Clock) -> None:
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=False)
    targets = drv.discover()
    drv.observe(targets)
    # 4 s later (SYSTEM_EVERY_S: vmstat is read again): 2000 reads, 500 merged, 32000
    # sectors (16 MiB), 1000 ms busy.
    assert SYSTEM_EVERY_S == 4.0
    bump_disk(fake_root, "vda", {0: 2000, 1: 500, 2: 32000, 9: 1000})
    bump(fake_root, "proc/vmstat", "pgmajfault", {1: 200})
    bump(fake_root, "proc/vmstat", "pgpgin", {1: 4096})
    bump(fake_root, "proc/vmstat", "workingset_refault_file", {1: 20})
    clock.now += 4.0
    f = drv.observe(targets)["vda"].features
    assert f["rd_iops"] == pytest.approx(500)
    assert f["rd_mbps"] == pytest.approx(32000 * 512 / 1e6 / 4)
    assert f["rd_req_kb"] == pytest.approx(8.0)
    assert f["rd_merge_frac"] == pytest.approx(0.2)
    assert f["util"] == pytest.approx(0.25)
    assert f["majflt_s"] == pytest.approx(50)
    assert f["pgpgin_mbs"] == pytest.approx(1.0)
    assert f["refault_s"] == pytest.approx(5)


def _reading_window(fake_root: Root, clock: Clock, reads: int, sectors: int
                    ) -> object:
    """A stand-in for the trace sample: ``reads`` requests of ``sectors`` in total complete
    on vda during its 0.05 s window."""
    one = TraceStats(reads=3, faults=0, sync_ra=0, async_ra=0, rate=60.0, seq_frac=0.0,
                     near_frac=0.0, log_gap=9.0, req_pages=1.0, files=3, ra_pages=math.nan)

    def sample(names: list[str]) -> dict[str, TraceStats]:
        bump_disk(fake_root, "vda", {0: reads, 2: sectors})
        clock.now += 0.05
        return {"vda": one}
    return sample


@pytest.mark.parametrize("wrote", [True, False])
def test_a_tick_after_a_write_takes_its_disk_features_over_its_window(
        fake_root: Root, clock: Clock, monkeypatch: pytest.MonkeyPatch, wrote: bool) -> None:
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=True)
    targets = drv.discover()
    monkeypatch.setattr(drv, "_sample", _reading_window(fake_root, clock, 0, 0))
    drv.observe(targets)
    if wrote:
        drv.apply(drv.plan(targets[0], 16))
    # The interval: 400 reads of 1 MiB at the old value; the window: 100 of 16 KiB.
    bump_disk(fake_root, "vda", {0: 400, 2: 400 * 2048})
    clock.now += 1.0
    monkeypatch.setattr(drv, "_sample", _reading_window(fake_root, clock, 100, 100 * 32))
    f = drv.observe(targets)["vda"].features
    if wrote:
        assert f["rd_req_kb"] == pytest.approx(16.0)
        assert f["rd_iops"] == pytest.approx(100 / 0.05)
    else:  # from the last tick's counters to this tick's, read before its window
        assert f["rd_req_kb"] == pytest.approx(1024.0)
        assert f["rd_iops"] == pytest.approx(400 / 1.05)
    # Only the tick right after the write: the next one is over its whole interval again.
    bump_disk(fake_root, "vda", {0: 100, 2: 100 * 32})
    clock.now += 1.0
    f = drv.observe(targets)["vda"].features
    assert f["rd_req_kb"] == pytest.approx(16.0)
    assert f["rd_iops"] == pytest.approx(200 / 1.05)


def test_a_window_with_too_few_reads_after_a_write_leaves_the_interval(
        fake_root: Root, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=True)
    targets = drv.discover()
    monkeypatch.setattr(drv, "_sample", _reading_window(fake_root, clock, 0, 0))
    drv.observe(targets)
    drv.apply(drv.plan(targets[0], 16))
    bump_disk(fake_root, "vda", {0: 400, 2: 400 * 2048})
    clock.now += 1.0
    few = readahead.WINDOW_MIN_READS - 1
    monkeypatch.setattr(drv, "_sample", _reading_window(fake_root, clock, few, few * 32))
    f = drv.observe(targets)["vda"].features
    assert f["rd_iops"] == pytest.approx(400 / 1.05)
    assert f["rd_req_kb"] == pytest.approx(1024.0)


def _faults(**over: float | None) -> dict[str, float | None]:
    """A window of mmap random faults at 2560 KiB: 24 faults in 24 files, no readahead."""
    return {"tr_seq_frac": None, "tr_near_frac": None, "tr_fault_frac": 1.0,
            "tr_async_frac": None, "tr_files": 24.0, "ra_kb_log2": math.log2(2560)} | over


def test_faults_each_in_a_file_of_its_own_without_readahead_are_random() -> None:
    f = readahead.told_random(_faults())
    assert f["tr_seq_frac"] == 0.0 and f["tr_near_frac"] == 0.0
    assert ReadaheadDriver.derive(_faults(tr_seq_frac=math.nan))["tr_seq_frac"] == 0.0


@pytest.mark.parametrize("over", [
    {"tr_seq_frac": 0.6},  # the window could tell: left as measured
    {"tr_async_frac": 1.0},  # a readahead event: a stream's faults fire it
    {"tr_files": readahead.RANDOM_FAULT_FILES - 1.0},  # too few faults to say
    {"tr_fault_frac": 0.2},  # read() requests, not faults
    {"ra_kb_log2": 2.0},  # at 4 KiB no readahead fires even for a stream
    {"tr_fault_frac": None},  # the window saw nothing
], ids=short_id)
def test_what_is_not_a_window_of_random_faults_is_left_alone(over: dict[str, float]) -> None:
    f = _faults(**over)
    assert readahead.told_random(dict(f)) == f


def test_an_active_device_whose_trace_window_caught_nothing_is_blind(
        fake_root: Root, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=True)
    targets = drv.discover()
    one = TraceStats(reads=3, faults=0, sync_ra=0, async_ra=0, rate=60.0, seq_frac=1.0,
                     near_frac=1.0, log_gap=0.0, req_pages=1.0, files=1, ra_pages=math.nan)
    samples: list[dict[str, TraceStats]] = [{}, {}, {"vda": one}, {}]
    monkeypatch.setattr(drv, "_sample", lambda names: samples.pop(0))
    drv.observe(targets)
    clock.now += 1.0
    assert not drv.observe(targets)["vda"].blind  # nothing read, nothing sampled: idle
    bump_disk(fake_root, "vda", {0: 1000, 2: 16000})
    clock.now += 1.0
    assert not drv.observe(targets)["vda"].blind  # the window saw reads
    bump_disk(fake_root, "vda", {0: 1000, 2: 16000})
    clock.now += 1.0
    o = drv.observe(targets)["vda"]
    assert o.active and o.blind  # the disk read, the window saw nothing
    assert math.isnan(o.features["tr_seq_frac"]) and o.features["tr_rate_log2"] == 0.0


def test_without_trace_an_observation_is_never_blind(fake_root: Root, clock: Clock) -> None:
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=False)
    targets = drv.discover()
    drv.observe(targets)
    bump_disk(fake_root, "vda", {0: 1000, 2: 16000})
    clock.now += 1.0
    o = drv.observe(targets)["vda"]
    assert o.active and not o.blind  # /proc features are all it ever has: it decides on them


def test_available_memory_is_read_again_only_after_meminfo_every_s(
        fake_root: Root, clock: Clock) -> None:
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=False)
    targets = drv.discover()
    assert drv.observe(targets)["vda"].features["mem_avail_frac"] == \
        pytest.approx(24349480 / 24684084)
    bump(fake_root, "proc/meminfo", "MemAvailable:", {1: -12342040})  # half of it gone
    clock.now += MEMINFO_EVERY_S - 1
    assert drv.observe(targets)["vda"].features["mem_avail_frac"] == \
        pytest.approx(24349480 / 24684084)  # the last reading, not the file
    clock.now += 1
    assert drv.observe(targets)["vda"].features["mem_avail_frac"] == \
        pytest.approx(12007440 / 24684084)


def test_pressure_and_vmstat_are_read_again_only_after_system_every_s(
        fake_root: Root, clock: Clock) -> None:
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=False)
    targets = drv.discover()
    assert drv.observe(targets)["vda"].features["psi_io_full"] == 41.09
    pressure = fake_root.path("proc/pressure/io")
    pressure.write_text(pressure.read_text().replace("full avg10=41.09", "full avg10=97.50"))
    bump(fake_root, "proc/vmstat", "pgmajfault", {1: 300})
    clock.now += SYSTEM_EVERY_S - 0.5
    f = drv.observe(targets)["vda"].features
    assert f["psi_io_full"] == 41.09  # not read again yet: the last reading
    assert math.isnan(f["majflt_s"])  # no second vmstat reading yet
    clock.now += 0.5
    f = drv.observe(targets)["vda"].features
    assert f["psi_io_full"] == 97.5
    assert f["majflt_s"] == pytest.approx(300 / SYSTEM_EVERY_S)  # over the time between reads


def test_idle_device_has_no_request_size(fake_root: Root, clock: Clock) -> None:
    drv = ReadaheadDriver(fake_root, devices=["loop2"], trace=False)
    targets = drv.discover()
    drv.observe(targets)
    clock.now += 1.0
    f = drv.observe(targets)["loop2"].features
    assert f["rd_iops"] == 0.0 and f["util"] == 0.0
    assert math.isnan(f["rd_req_kb"]) and math.isnan(f["rd_merge_frac"])


def test_kernel_without_psi_gives_nan_pressure(fake_root: Root, clock: Clock) -> None:
    shutil.rmtree(fake_root.path("proc/pressure"))
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=False)
    f = drv.observe(drv.discover())["vda"].features
    assert math.isnan(f["psi_io_some"]) and math.isnan(f["psi_mem_some"])
    assert math.isnan(f["psi_io_full"]) and math.isnan(f["psi_mem_full"])  # guard: unknown


def test_kernel_without_tracefs_falls_back_to_proc_features(
        fake_root: Root, clock: Clock) -> None:
    # The fixture tree has no sys/kernel/tracing, as a kernel built without tracefs.
    drv = ReadaheadDriver(fake_root, devices=["vda"], trace=True)
    o = drv.observe(drv.discover())["vda"]
    assert o.source == "proc"
    assert drv.trace is False
    assert "tracefs unavailable" in drv.trace_note
    assert all(math.isnan(o.features[f]) for f in TRACE_FEATURES)


@pytest.mark.parametrize("text", ["", "1 2 3", "1 2 x 4 5 6 7 8 9 10 11", "-1 " * 11],
                         ids=short_id)
def test_device_with_garbled_counters_gets_no_observation(fake_root: Root, clock: Clock,
                                                          text: str) -> None:
    # The loop then asks current() to tell "removed" from "no data this tick".
    drv = ReadaheadDriver(fake_root, devices=["loop0", "vda"], trace=False)
    targets = drv.discover()
    fake_root.path("sys/block/loop0/stat").write_text(text)
    assert list(drv.observe(targets)) == ["vda"]


def test_removed_device_gets_no_observation_nor_the_others_an_error(
        fake_root: Root, clock: Clock) -> None:
    drv = ReadaheadDriver(fake_root, devices=["loop0", "vda"], trace=False)
    targets = drv.discover()
    drv.observe(targets)  # the counters' descriptors are kept from here on
    shutil.rmtree(fake_root.path("sys/block/loop0"))
    assert list(drv.observe(targets)) == ["vda"]
    assert drv.changed(targets) is None


@pytest.mark.parametrize("text", ["", "-4", "nan", "8192 kB", "\x00", "9" * 5000], ids=short_id)
def test_garbled_read_ahead_kb_is_unparsable_and_blinds_only_its_device(
        fake_root: Root, clock: Clock, text: str) -> None:
    # Found by tests/test_fuzz_kernel_files.py: int() raised ValueError through the tick.
    drv = ReadaheadDriver(fake_root, devices=["loop0", "vda"], trace=False)
    targets = drv.discover()
    fake_root.path("sys/block/loop0/queue/read_ahead_kb").write_text(text + "\n")
    with pytest.raises(Unparsable, match="loop0/queue/read_ahead_kb"):
        drv.current(targets[0])
    with pytest.raises(Unparsable):
        drv.plan(targets[0], 64)
    assert list(drv.observe(targets)) == ["vda"]


def test_device_removed_from_sysfs_is_gone(fake_root: Root, clock: Clock) -> None:
    drv = ReadaheadDriver(fake_root, devices=["loop0"], trace=False)
    targets = drv.discover()
    shutil.rmtree(fake_root.path("sys/block/loop0"))
    # No observation (its counters are gone with it); current() tells the loop why.
    assert drv.observe(targets) == {}
    with pytest.raises(DeviceGone):
        drv.current(targets[0])


# -- plan and apply --------------------------------------------------------------------


def test_candidates_are_powers_of_two_from_4_to_4096(fake_root: Root) -> None:
    drv = ReadaheadDriver(fake_root, trace=False)
    assert drv.candidates(target(drv, "vda")) == CANDIDATES
    assert CANDIDATES[0] == 4 and CANDIDATES[-1] == 4096


def test_plan_reads_current_and_writes_nothing(fake_root: Root) -> None:
    drv = ReadaheadDriver(fake_root, trace=False)
    change = drv.plan(target(drv, "vda"), 256)
    assert (change.old, change.new, change.expect) == ("8192", "256", "256")
    assert change.path == "sys/block/vda/queue/read_ahead_kb"
    assert fake_root.read(change.path) == "8192"


@pytest.mark.parametrize(("value", "expect"), [(6, "4"), (4, "4"), (130, "128"), (2, "0")])
def test_read_ahead_kb_rounds_down_to_pages(fake_root: Root, value: int, expect: str) -> None:
    # The kernel stores ra_pages = value / 4 KiB: 6 reads back as 4, 2 as 0.
    drv = ReadaheadDriver(fake_root, trace=False)
    assert drv.plan(target(drv, "vda"), value).expect == expect


def test_apply_writes_and_reads_back(fake_root: Root) -> None:
    drv = ReadaheadDriver(fake_root, trace=False)
    t = target(drv, "vda")
    assert drv.apply(drv.plan(t, 256)) == "256"
    assert drv.current(t) == 256


def test_read_back_differing_from_expected_raises_write_mismatch(fake_root: Root) -> None:
    # The fake file does not round: after writing 6 it shows 6, not the 4 the kernel shows.
    drv = ReadaheadDriver(fake_root, trace=False)
    change = drv.plan(target(drv, "vda"), 6)
    with pytest.raises(WriteMismatch, match="wrote 6, kernel shows '6'"):
        drv.apply(change)


def test_read_back_with_a_newline_gives_a_one_line_write_mismatch(
        fake_root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by tests/test_fuzz_kernel_files.py: the text the kernel showed went into the
    # message as is, and its newline split the agent's log line in two.
    drv = ReadaheadDriver(fake_root, trace=False)
    change = drv.plan(target(drv, "vda"), 256)
    real_write = Root.write

    def kernel_shows_two_lines(self: Root, rel: str, value: str,
                               owner: str | None = None) -> None:
        real_write(self, rel, value, owner)
        self.path(rel).write_text("256\nmltune: restored everything\n")

    monkeypatch.setattr(Root, "write", kernel_shows_two_lines)
    with pytest.raises(WriteMismatch) as info:
        drv.apply(change)
    msg = str(info.value)
    assert msg.startswith("/sys/block/vda/queue/read_ahead_kb: wrote 256, kernel shows "
                          "'256\\nmltune:")
    assert len(msg.splitlines()) == 1


def test_apply_to_removed_device_is_device_gone(fake_root: Root) -> None:
    drv = ReadaheadDriver(fake_root, trace=False)
    change = drv.plan(target(drv, "loop0"), 256)
    shutil.rmtree(fake_root.path("sys/block/loop0"))
    with pytest.raises(DeviceGone):
        drv.apply(change)


# -- between ticks ---------------------------------------------------------------------


def test_moved_needs_the_factor_in_either_rate_above_the_floors() -> None:
    assert moved((1000, 4000), (1500, 6000), 2) == ""  # 1.5x: the same workload
    assert moved((1000, 4000), (500, 2000), 2) == "reads/s 1000 -> 500"
    assert moved((1000, 4000), (1000, 400_000), 4, "x") == "KiB/s 4000 -> 400000 x"
    assert moved((0, 0), (5, 50), 2) == ""  # an idle disk's stray reads
    assert moved((0, 0), (5000, 20_000), 4) != ""  # a workload starts


def ticked(root: Root, clock: Clock, reads: int, sectors: int
           ) -> tuple[ReadaheadDriver, list[Target]]:
    """A driver on vda whose last tick saw ``reads`` and ``sectors`` read over 1 s."""
    drv = ReadaheadDriver(root, devices=["vda"], trace=False)
    targets = drv.discover()
    drv.observe(targets)
    bump_disk(root, "vda", {0: reads, 2: sectors})
    clock.now += 1.0
    drv.observe(targets)
    return drv, targets


def test_changed_compares_each_look_with_what_the_tick_observed(
        fake_root: Root, clock: Clock) -> None:
    drv, targets = ticked(fake_root, clock, 4000, 32000)  # 4000 reads/s, 16000 KiB/s
    assert drv.changed(targets, reset=True) is None
    for reads in (1000, 1100, 900):  # steady within 1.2x
        bump_disk(fake_root, "vda", {0: reads, 2: reads * 8})
        clock.now += 0.25
        assert drv.changed(targets) is None
    # mmap random reads at a large readahead become a stream: 10x the reads.
    bump_disk(fake_root, "vda", {0: 10_000, 2: 80_000})
    clock.now += 0.25
    assert drv.changed(targets) == "vda: reads/s 4000 -> 40000"


def test_bursts_around_the_rate_are_no_change_but_a_lasting_2x_is(
        fake_root: Root, clock: Clock) -> None:
    drv, targets = ticked(fake_root, clock, 2000, 2_000_000)  # a stream at 2048 KiB: 2000/s
    drv.changed(targets, reset=True)
    for reads in (175, 1475, 175, 1475, 175):  # 700 and 5900 reads/s in turn: bursts
        bump_disk(fake_root, "vda", {0: reads, 2: reads * 1000})
        clock.now += 0.25
        assert drv.changed(targets) is None
    for reads, want in ((1500, None), (1500, "vda: reads/s 2000 -> 6000 over 2 looks")):
        bump_disk(fake_root, "vda", {0: reads, 2: reads * 1000})
        clock.now += 0.25
        assert drv.changed(targets) == want


def test_a_target_the_tick_wrote_is_compared_with_the_first_look_after(
        fake_root: Root, clock: Clock) -> None:
    # 100 reads/s of 40 KiB: random faults at a large readahead
    drv, targets = ticked(fake_root, clock, 100, 8000)
    assert drv.changed(targets, reset=True, wrote=["vda"]) is None
    for _ in range(3):  # the write to 4 KiB made it 10000 reads/s: no change of workload
        bump_disk(fake_root, "vda", {0: 2500, 2: 20000})
        clock.now += 0.25
        assert drv.changed(targets) is None


def test_signature_leaves_what_the_window_could_not_tell_unknown(fake_root: Root) -> None:
    drv = ReadaheadDriver(fake_root)
    stream = {"tr_seq_frac": 1.0, "tr_near_frac": 1.0, "tr_fault_frac": 0.0, "tr_req_pages": 16}
    assert drv.signature(Observation("sda", 0.0, stream, "tracefs")) == (1.0, 1.0, 0.0, 0.5)
    # A few faults caught early in a new phase: too few reads per file for a stream fraction.
    few = {"tr_seq_frac": math.nan, "tr_near_frac": math.nan, "tr_fault_frac": 1.0}
    sig = drv.signature(Observation("sda", 0.0, few, "tracefs"))
    assert sig is not None and sig[2:] == (1.0, 0.0) and all(map(math.isnan, sig[:2]))
    assert drv.signature(Observation("sda", 0.0, {}, "proc")) is None  # no trace at all


def _window(rate: float, faults: float, seq: float, log_gap: float,
            req: float = math.nan) -> dict[str, float]:
    return {"tr_rate_log2": math.log2(rate + 1), "tr_fault_frac": faults, "tr_seq_frac": seq,
            "tr_log_gap": log_gap, "tr_req_pages": req}


def test_reward_counts_the_pages_a_sequential_mmap_reader_touches_per_fault() -> None:
    # Audited windows of mmap-seq (shuffled mix, -v17): at 256 KiB the faults land 64 pages
    # apart, at 1024 KiB 242 apart and 3.2x rarer; the device read 1.25 vs 1.57 GB/s.
    at_256 = app_kib_s(_window(4800, 1.0, 1.0, 6.0))
    at_1024 = app_kib_s(_window(1550, 1.0, 1.0, 7.92))
    assert at_256 == pytest.approx(4800 * 64 * 4)
    assert at_1024 is not None and at_256 is not None and 1.1 < at_1024 / at_256 < 1.4
    # Random faults (few continue a stream): one page each, however far apart they land.
    assert app_kib_s(_window(20000, 1.0, 0.02, 18.0)) == pytest.approx(20000 * 4)
    # A stream window's stray far gaps cannot count more than the stream detector allows.
    far = app_kib_s(_window(10, 1.0, 0.9, 30.0))
    assert far == pytest.approx(10 * (STREAM_GAP_PAGES + 1) * 4)


def test_reward_counts_read_requests_by_their_pages_and_nothing_without_accesses() -> None:
    assert app_kib_s(_window(1000, 0.0, 1.0, 0.0, req=16)) == pytest.approx(1000 * 16 * 4)
    assert app_kib_s(_window(1000, 0.5, math.nan, math.nan)) == pytest.approx(1000 * 4)
    assert app_kib_s({"tr_rate_log2": 0.0, "tr_fault_frac": math.nan}) is None
    assert app_kib_s({}) is None
