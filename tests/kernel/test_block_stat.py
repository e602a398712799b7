"""The driver reads each target's /sys/block/<dev>/stat instead of /proc/diskstats: on the
real kernel both show the same read counters for a device that has just been read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mltune.lab import Lab
from mltune.procfs import DiskStat, parse_block_stat

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices, mounts, cgroups"),
    pytest.mark.skipif(shutil.which("fio") is None, reason="needs fio (apt-get install -y fio)"),
]


def _from_diskstats(dev: str) -> DiskStat:
    for line in Path("/proc/diskstats").read_text().splitlines():
        f = line.split()
        if f[2] == dev:  # Documentation/admin-guide/iostats.rst: reads merged sectors ms ...
            return DiskStat(*(int(f[i]) for i in (3, 4, 5, 6, 12)))
    raise AssertionError(f"{dev} not in /proc/diskstats")


def test_block_stat_has_the_read_counters_of_diskstats(tmp_path: Path) -> None:
    with Lab(tmp_path, size_mib=64, files=2) as lab:
        lab.run("seq", 0.5)
        pairs = []
        for _ in range(5):  # ext4 may still write (or read metadata) right after the run
            stat = parse_block_stat((Path("/sys/block") / lab.device / "stat").read_text())
            pairs.append((stat, _from_diskstats(lab.device)))
            if pairs[-1][0] == pairs[-1][1]:
                break
    stat, disk = pairs[-1]
    assert stat is not None and stat.reads > 0
    assert stat == disk, pairs
