"""Kernel files read without file objects: kept /proc files see each new content, a file
the kernel lacks is empty when allowed, and errors are the usual domain errors."""

from __future__ import annotations

import pytest
from mltune.errors import DeviceGone, KnobMissing
from mltune.kept import KeptFile, read_once
from mltune.sysfs import Root


def test_kept_file_reads_the_current_content_each_time(fake_root: Root) -> None:
    f = KeptFile(fake_root, "proc/vmstat")
    first = f.read()
    assert first.startswith(b"nr_free_pages ")
    fake_root.path("proc/vmstat").write_text("pgmajfault 7\n")
    assert f.read() == b"pgmajfault 7\n"
    f.close()


def test_kept_file_longer_than_one_read_is_read_whole(fake_root: Root) -> None:
    big = "".join(f"counter_{i} {i}\n" for i in range(10000))  # > 64 KiB
    fake_root.path("proc/vmstat").write_text(big)
    assert KeptFile(fake_root, "proc/vmstat").read() == big.encode()


def test_missing_psi_file_reads_empty_when_allowed(fake_root: Root) -> None:
    fake_root.path("proc/pressure/io").unlink()
    assert KeptFile(fake_root, "proc/pressure/io", missing_ok=True).read() == b""
    with pytest.raises(KnobMissing):
        KeptFile(fake_root, "proc/pressure/io").read()


def test_read_once_tells_a_removed_device_from_a_missing_knob(fake_root: Root) -> None:
    assert read_once(fake_root, "sys/block/vda/queue/read_ahead_kb") == "8192"
    with pytest.raises(KnobMissing):
        read_once(fake_root, "sys/block/vda/queue/nope", owner="sys/block/vda")
    with pytest.raises(DeviceGone):
        read_once(fake_root, "sys/block/loop9/queue/read_ahead_kb", owner="sys/block/loop9")
