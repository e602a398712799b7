"""The workload lab on the real kernel: it reads, and it leaves nothing behind.

Needs root (loop devices, mounts, memory cgroups) and fio; about 5 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mltune.lab import Lab, LabError

_TOOLS = ("fio", "losetup", "mkfs.ext4", "mount", "umount")

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices, mounts, cgroups"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in _TOOLS),
                       reason=f"needs {', '.join(_TOOLS)} (apt-get install -y fio)"),
]


def _mount_points() -> set[str]:
    with open("/proc/self/mountinfo") as handle:
        return {line.split()[4] for line in handle}


def _backing_file(device: str) -> str | None:
    """The loop device's backing file, None once detached (the number may be reused later)."""
    path = Path("/sys/block") / device / "loop" / "backing_file"
    return path.read_text().strip() if path.exists() else None


def test_own_device_reads_seq_then_detaches_unmounts_and_removes_cgroup(tmp_path: Path) -> None:
    with Lab(tmp_path, size_mib=256, files=8) as lab:
        device, cgroup, mount_point = lab.device, lab.cgroup_path, lab.dataset_dir.parent
        assert str(mount_point) in _mount_points()
        assert cgroup.is_dir()
        result = lab.run("seq", 1.0)

    assert result.io_bytes > 0 and result.ios > 0 and result.seconds >= 1.0
    backing = _backing_file(device)
    assert backing is None or not backing.startswith(str(tmp_path))
    assert str(mount_point) not in _mount_points()
    assert not cgroup.exists()
    assert list(tmp_path.iterdir()) == []


def _file_bytes(cgroup: Path) -> int:
    """Page cache charged to a cgroup: "file" in memory.stat (v2), "total_cache" (v1)."""
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    return int(stat.get("file", stat.get("total_cache", "0")))


def test_reclaim_empties_the_page_cache_a_phase_left_in_the_cgroup(tmp_path: Path) -> None:
    with Lab(tmp_path, size_mib=256, files=8) as lab:
        lab.run("seq", 1.0)
        before = _file_bytes(lab.cgroup_path)
        took = lab.reclaim()
        after = _file_bytes(lab.cgroup_path)
    assert before > 16 << 20  # the stream left its pages
    assert after < before / 4, (before, after)
    assert took >= 0


def test_a_workdir_the_lab_created_is_removed_one_it_found_is_kept(tmp_path: Path) -> None:
    # `mltune collect` left an empty /var/tmp/mltune-lab behind (its default workdir).
    workdir = tmp_path / "new" / "lab"
    with Lab(workdir, size_mib=64, files=2):
        assert workdir.is_dir()
    assert not workdir.exists()
    assert (tmp_path / "new").is_dir()  # made by parents=True: not known to be the lab's
    with Lab(tmp_path, size_mib=64, files=2):
        pass
    assert tmp_path.is_dir()


@pytest.fixture
def mounted_loop(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loop device with ext4 mounted, made the way an operator would, and removed after."""
    backing, mount_point = tmp_path / "disk.img", tmp_path / "mnt"
    with backing.open("wb") as handle:
        handle.truncate(400 * 1024 * 1024)
    mount_point.mkdir()
    dev = subprocess.run(["losetup", "--direct-io=on", "-f", "--show", str(backing)],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        subprocess.run(["mkfs.ext4", "-q", dev], check=True, capture_output=True)
        subprocess.run(["mount", dev, str(mount_point)], check=True, capture_output=True)
        try:
            yield Path(dev).name, mount_point
        finally:
            subprocess.run(["umount", str(mount_point)], check=True)
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def test_given_device_keeps_filesystem_restores_read_ahead_and_removes_dataset(
        tmp_path: Path, mounted_loop: tuple[str, Path]) -> None:
    device, mount_point = mounted_loop
    knob = Path("/sys/block") / device / "queue" / "read_ahead_kb"
    before = knob.read_text().strip()

    with Lab(tmp_path / "work", size_mib=64, files=4, device=device) as lab:
        assert lab.dataset_dir == mount_point / "mltune-dataset"
        lab.set_read_ahead_kb(16)
        # The kernel keeps whole pages: 6 KiB reads back as 4, which the lab reports.
        with pytest.raises(LabError, match="reads back 4"):
            lab.set_read_ahead_kb(6)

    assert knob.read_text().strip() == before
    assert str(mount_point) in _mount_points()
    assert not (mount_point / "mltune-dataset").exists()


def test_refuses_a_device_that_is_not_a_loop_device(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a loop device"):
        Lab(tmp_path, device="vda")
