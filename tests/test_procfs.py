"""/proc and /sys parsers on files captured from a 6.18 VM (tests/fixtures/linux-6.18-vm)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mltune.procfs import (
    DiskStat,
    find_counters,
    parse_block_stat,
    parse_keyvalue,
    parse_pressure,
    parse_u64,
)

from tests.conftest import LINUX_618, short_id

PROC = LINUX_618 / "proc"


def _text(name: str) -> str:
    return (PROC / name).read_text(encoding="ascii")


def _stat(dev: str) -> str:
    return (LINUX_618 / "sys" / "block" / dev / "stat").read_text(encoding="ascii")


def test_block_stat_read_side_fields_and_io_ticks() -> None:
    # /proc/diskstats: 254 0 vda 2508936 81636 342095754 450647 36695 8155 42550008 15027 1
    # 178092 ...: the same counters, without major, minor and name.
    assert parse_block_stat(_stat("vda")) == DiskStat(
        reads=2508936, reads_merged=81636, sectors_read=342095754, ms_reading=450647,
        io_ticks_ms=178092)
    assert parse_block_stat(_stat("loop2")) == DiskStat(0, 0, 0, 0, 0)


def test_block_stat_with_discard_and_flush_fields_parses_the_same() -> None:
    # 4.18 added 4 discard fields, 5.5 two flush fields: the first 11 do not move.
    short = "10 2 80 5 0 0 0 0 0 7 12"
    assert parse_block_stat(short) == parse_block_stat(short + " 0 0 0 0 0 0") == \
        DiskStat(10, 2, 80, 5, 7)



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


# -- garbled files (found by tests/test_fuzz_kernel_files.py) ----------------------------
# Each of these once escaped the agent's tick as ValueError or OverflowError.


@pytest.mark.parametrize("counter", ["NaN", "-5", "1.5", "1e400", "9" * 5000, "loop1", "1_0"],
                         ids=short_id)
def test_block_stat_garbled_counter_is_no_stat(counter: str) -> None:
    text = _stat("vda").replace(" 2508936 ", f" {counter} ")
    assert parse_block_stat(text) is None


@pytest.mark.parametrize("text", ["", "\n", "1 2 3 4 5 6 7 8 9 10"], ids=short_id)
def test_block_stat_cut_short_is_no_stat(text: str) -> None:
    assert parse_block_stat(text) is None


@pytest.mark.parametrize("value", ["-1", "9" * 21, "9" * 5000, "1e400", "12abc"], ids=short_id)
def test_vmstat_value_that_is_no_u64_leaves_the_key_out(value: str) -> None:
    text = _text("vmstat").replace("pgmajfault 823740", f"pgmajfault {value}")
    vm = parse_keyvalue(text)
    assert "pgmajfault" not in vm
    assert vm["pgpgin"] == 334800173


def test_meminfo_key_does_not_take_the_number_of_the_next_line() -> None:
    assert parse_keyvalue("MemTotal:\n24684084 kB\n") == {}


@pytest.mark.parametrize("avg", ["nan", "inf", "-inf", "1e400", "54.\ufffdn26", "-3.0", ""])
def test_pressure_garbled_average_is_unknown(avg: str) -> None:
    text = f"some avg10={avg} avg60=47.21 avg300=25.30 total=1\n"
    assert parse_pressure(text) == {"some_avg60": 47.21}


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("8192", 8192), ("18446744073709551615", 2**64 - 1),
    ("", None), ("-4", None), ("+4", None), (" 4", None), ("1_000", None), ("4.0", None),
    ("\u0663", None), ("9" * 21, None), ("9" * 5000, None),
], ids=short_id)
def test_u64_takes_only_what_the_kernel_prints(text: str, value: int | None) -> None:
    assert parse_u64(text) == value


# find_counters must give what the regex it replaced gave, on any text.
_VM_RE = re.compile(rb"^(pgmajfault|pgpgin|workingset_refault_file) (\d{1,20})$", re.MULTILINE)
_MI_RE = re.compile(rb"^(MemTotal|MemAvailable): +(\d{1,20}) kB$", re.MULTILINE)
_PIECES = st.sampled_from([b"pgmajfault", b"pgpgin", b"workingset_refault_file", b"pgpgout",
                           b"MemTotal:", b"MemAvailable:", b"Mem", b" ", b"  ", b"\n", b"\r",
                           b" kB", b"kB", b"0", b"12", b"9" * 20, b"1" * 21, b"-3", b"\xb2",
                           b"x", b":"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=40).map(b"".join))
def test_find_counters_is_the_regex_it_replaced(text: bytes) -> None:
    want_vm = {k.decode(): int(v) for k, v in _VM_RE.findall(text)}
    want_mi = {k.decode(): int(v) for k, v in _MI_RE.findall(text)}
    assert find_counters(text, (b"pgmajfault", b"pgpgin", b"workingset_refault_file")) == want_vm
    assert find_counters(text, (b"MemTotal:", b"MemAvailable:"), spaces=True,
                         unit=b" kB") == want_mi


def test_find_counters_on_the_captured_files() -> None:
    vm, mi = (PROC / "vmstat").read_bytes(), (PROC / "meminfo").read_bytes()
    assert find_counters(vm, (b"pgmajfault", b"pgpgin", b"workingset_refault_file")) == \
        {k.decode(): int(v) for k, v in _VM_RE.findall(vm)}
    got = find_counters(mi, (b"MemTotal:", b"MemAvailable:"), spaces=True, unit=b" kB")
    assert got == {"MemTotal": 24684084, "MemAvailable": 24349480}


_AVG_RE = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")  # what parse_pressure used to match


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["some", "full", " ", "\n", "avg10=", "avg60=", "total=", "=",
                                 "0", "1", "12.34", ".", "9" * 20, "１", "²", "nan", "1e3",
                                 "-", "x"]), max_size=30).map("".join))
def test_pressure_averages_are_what_the_regex_took(text: str) -> None:
    want: dict[str, float] = {}
    for line in text.splitlines():
        f = line.split()
        for kv in f[1:]:
            k, _, v = kv.partition("=")
            if k in ("avg10", "avg60") and _AVG_RE.fullmatch(v):
                want[f"{f[0]}_{k}"] = float(v)
    assert parse_pressure(text) == want


@pytest.mark.parametrize("avg", ["1.", ".5", "1.2.3", "１", "²", "9" * 20, "9" * 21,
                                 "1." + "2" * 20, "1." + "2" * 21, "", "0.00", "12.3",
                                 "1e3", "nan", "+1", " 1"])
def test_pressure_average_edge_cases_are_what_the_regex_took(avg: str) -> None:
    got = parse_pressure(f"some avg10={avg} avg60=1.00 avg300=0.00 total=1\n")
    assert ("some_avg10" in got) == bool(_AVG_RE.fullmatch(avg))
