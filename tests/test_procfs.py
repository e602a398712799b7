"""/proc parsers on files captured from a 6.18 VM (tests/fixtures/linux-6.18-vm/proc)."""

from __future__ import annotations

from mltune.procfs import DiskStat, parse_diskstats, parse_keyvalue, parse_pressure

from tests.conftest import LINUX_618

PROC = LINUX_618 / "proc"


def _text(name: str) -> str:
    return (PROC / name).read_text(encoding="ascii")


def test_diskstats_has_every_block_device_including_unbound_loops() -> None:
    disks = parse_diskstats(_text("diskstats"))
    assert set(disks) == {*(f"loop{i}" for i in range(8)), "vda", "zram0"}
    assert disks["loop2"] == DiskStat(0, 0, 0, 0, 0)


def test_diskstats_read_side_fields_and_io_ticks() -> None:
    # 254 0 vda 2508936 81636 342095754 450647 36695 8155 42550008 15027 1 178092 ...
    vda = parse_diskstats(_text("diskstats"))["vda"]
    assert vda == DiskStat(reads=2508936, reads_merged=81636, sectors_read=342095754,
                           ms_reading=450647, io_ticks_ms=178092)


def test_diskstats_kernel_2_6_short_partition_lines_are_skipped() -> None:
    # Before 2.6.25 partitions had 4 counters; such lines carry no read-side detail.
    text = "   8       1 sda1 1904 30366 14 112\n" + _text("diskstats")
    disks = parse_diskstats(text)
    assert "sda1" not in disks
    assert "vda" in disks


def test_diskstats_with_discard_and_flush_fields_parses_the_same() -> None:
    # 4.18 added 4 discard fields, 5.5 two flush fields: the first 14 do not move.
    line = "254 0 vda 10 2 80 5 0 0 0 0 0 7 12"
    longer = line + " 0 0 0 0 0 0"
    assert parse_diskstats(line) == parse_diskstats(longer)


def test_vmstat_counters() -> None:
    vm = parse_keyvalue(_text("vmstat"))
    assert vm["pgpgin"] == 334800173
    assert vm["pgmajfault"] == 823740
    assert vm["workingset_refault_file"] == 15181688


def test_meminfo_values_in_kb_and_unitless_lines() -> None:
    mem = parse_keyvalue(_text("meminfo"))
    assert mem["MemTotal"] == 24684084
    assert mem["MemAvailable"] == 24349480
    assert mem["HugePages_Total"] == 0  # no "kB" suffix on this line
    assert mem["Hugepagesize"] == 2048


def test_pressure_io_some_and_full() -> None:
    io = parse_pressure(_text("pressure/io"))
    assert io == {"some_avg10": 54.26, "some_avg60": 47.21,
                  "full_avg10": 41.09, "full_avg60": 37.2}


def test_pressure_memory_and_cpu() -> None:
    assert parse_pressure(_text("pressure/memory"))["some_avg10"] == 3.37
    # /proc/pressure/cpu has a "full" line since 5.13, all zeros at system level.
    cpu = parse_pressure(_text("pressure/cpu"))
    assert cpu["some_avg10"] == 13.92
    assert cpu["full_avg10"] == cpu["full_avg60"] == 0.0


def test_pressure_absent_kernel_without_psi_gives_nothing() -> None:
    # CONFIG_PSI=n or psi=0: the driver reads the file with fallback "".
    assert parse_pressure("") == {}
