"""Kernel files read without file objects: kept /proc files see each new content, a file
the kernel lacks is empty when allowed, and errors are the usual domain errors."""

from __future__ import annotations

import shutil

import pytest
from mltune.errors import DeviceGone, KnobMissing
from mltune.kept import KeptAttr, KeptFile, read_once
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


def test_kept_attribute_reads_each_new_value(fake_root: Root) -> None:
    knob = KeptAttr(fake_root, "sys/block/vda/queue/read_ahead_kb", owner="sys/block/vda")
    assert knob.read() == "8192"
    fake_root.path("sys/block/vda/queue/read_ahead_kb").write_text("128\n")
    assert knob.read() == "128"
    knob.close()


def test_kept_attribute_of_a_removed_device_is_gone_not_stale(fake_root: Root) -> None:
    # A fake tree keeps answering through the descriptor of a deleted file (the kernel
    # answers ENODEV): the link count says it is gone, and the read by path says why.
    knob = KeptAttr(fake_root, "sys/block/vda/queue/read_ahead_kb", owner="sys/block/vda")
    assert knob.read() == "8192"
    shutil.rmtree(fake_root.path("sys/block/vda"))
    with pytest.raises(DeviceGone):
        knob.read()


def test_kept_attribute_follows_a_device_that_came_back(fake_root: Root) -> None:
    knob = KeptAttr(fake_root, "sys/block/vda/queue/read_ahead_kb", owner="sys/block/vda")
    assert knob.read() == "8192"
    path = fake_root.path("sys/block/vda/queue/read_ahead_kb")
    path.unlink()
    path.write_text("4\n")
    assert knob.read() == "4"
    knob.close()


def test_kept_attribute_missing_knob_is_not_a_removed_device(fake_root: Root) -> None:
    with pytest.raises(KnobMissing):
        KeptAttr(fake_root, "sys/block/vda/queue/nope", owner="sys/block/vda").read()
