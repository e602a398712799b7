"""The sysfs access layer: reads with an explicit fallback, one-call writes, errno mapping."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from mltune.errors import (
    DeviceGone,
    KnobMissing,
    MltuneError,
    NotPermitted,
    Unparsable,
    ValueRejected,
)
from mltune.sysfs import Root, translate

from tests.conftest import short_id

RA = "sys/block/vda/queue/read_ahead_kb"


def _oserror(code: int, path: Path) -> OSError:
    """What open(2)/write(2) raise: errno, strerror and filename set, subclass chosen by errno."""
    return OSError(code, os.strerror(code), str(path))


# -- reads -----------------------------------------------------------------------------


def test_read_strips_the_trailing_newline_sysfs_adds(fake_root: Root) -> None:
    assert fake_root.read(RA) == "8192"
    assert fake_root.read("sys/block/vda/dev") == "254:0"


def test_scheduler_file_shows_active_one_in_brackets(fake_root: Root) -> None:
    assert fake_root.read("sys/block/vda/queue/scheduler") == "none [mq-deadline] kyber bfq"


def test_zram_has_no_scheduler_file_and_fallback_says_so(fake_root: Root) -> None:
    # zram is bio-based: the kernel creates no queue/scheduler for it.
    assert fake_root.read("sys/block/zram0/queue/scheduler", fallback="") == ""
    assert fake_root.read("sys/block/zram0/queue/scheduler", fallback=None) is None


def test_missing_knob_of_live_device_is_knob_missing(fake_root: Root) -> None:
    with pytest.raises(KnobMissing, match="zram0/queue/scheduler"):
        fake_root.read("sys/block/zram0/queue/scheduler", owner="sys/block/zram0")


def test_read_after_device_removed_is_device_gone(fake_root: Root) -> None:
    shutil.rmtree(fake_root.path("sys/block/loop0"))
    with pytest.raises(DeviceGone, match="loop0") as info:
        fake_root.read("sys/block/loop0/queue/read_ahead_kb", owner="sys/block/loop0")
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_fallback_does_not_hide_other_errors(fake_root: Root) -> None:
    # A directory where a file is expected (EISDIR) is not "missing": it must surface.
    with pytest.raises(MltuneError):
        fake_root.read("sys/block/vda/queue", fallback="")


def test_leading_slash_in_relative_path_stays_under_root(fake_root: Root) -> None:
    assert fake_root.path("/" + RA) == Path("/host") / RA
    assert fake_root.read("/" + RA) == "8192"


def test_listdir_is_sorted(fake_root: Root) -> None:
    assert fake_root.listdir("sys/block") == ["loop0", "loop2", "vda", "zram0"]


def test_listdir_of_missing_directory_is_knob_missing(fake_root: Root) -> None:
    with pytest.raises(KnobMissing):
        fake_root.listdir("sys/class/nvme")


def test_read_int_of_a_knob(fake_root: Root) -> None:
    assert fake_root.read_int(RA, owner="sys/block/vda") == 8192


@pytest.mark.parametrize("text", ["", "\n", "-4\n", "1.5e3\n", "nan\n", "128 kB\n", "1_28\n",
                                  "128\n128\n", "9" * 5000, "\xff\xfe"], ids=short_id)
def test_read_int_of_a_garbled_knob_is_unparsable_in_one_line(fake_root: Root,
                                                              text: str) -> None:
    # Found by the fuzz test: int() raised ValueError through the agent's tick.
    fake_root.path(RA).write_bytes(text.encode("latin-1"))
    with pytest.raises(Unparsable, match="not an unsigned integer") as info:
        fake_root.read_int(RA, owner="sys/block/vda")
    assert str(fake_root.path(RA)) in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    assert len(str(info.value)) < 200


# -- writes ----------------------------------------------------------------------------


def test_write_then_read_back(fake_root: Root) -> None:
    fake_root.write(RA, "256", owner="sys/block/vda")
    assert fake_root.read(RA) == "256"


def test_shorter_value_replaces_longer_one_like_echo(fake_root: Root) -> None:
    # sysfs replaces the value whatever its length; a copied tree must behave the same.
    fake_root.write(RA, "4")
    assert fake_root.read(RA) == "4"


def test_write_after_device_removed_is_device_gone(fake_root: Root) -> None:
    shutil.rmtree(fake_root.path("sys/block/loop0"))
    with pytest.raises(DeviceGone):
        fake_root.write("sys/block/loop0/queue/read_ahead_kb", "128", owner="sys/block/loop0")


def test_write_never_creates_a_missing_knob(fake_root: Root) -> None:
    with pytest.raises(KnobMissing):
        fake_root.write("sys/block/zram0/queue/scheduler", "none", owner="sys/block/zram0")
    assert not fake_root.exists("sys/block/zram0/queue/scheduler")


def test_write_without_permission_is_not_permitted(fake_root: Root, fs) -> None:
    from pyfakefs.helpers import reset_ids, set_uid

    os.chmod(fake_root.path(RA), 0o644)
    set_uid(1000)  # pyfakefs then enforces permissions as for an ordinary user
    try:
        with pytest.raises(NotPermitted, match="not permitted") as info:
            fake_root.write(RA, "256", owner="sys/block/vda")
    finally:
        reset_ids()
    assert isinstance(info.value.__cause__, PermissionError)
    assert fake_root.read(RA) == "8192"


def test_truncate_empties_a_file_like_echo_into_trace(fake_root: Root) -> None:
    fake_root.truncate(RA)
    assert fake_root.read(RA) == ""


# -- errno mapping ---------------------------------------------------------------------


def test_enoent_with_live_owner_is_knob_missing(tmp_path: Path) -> None:
    knob = tmp_path / "queue" / "wbt_lat_usec"
    err = translate(_oserror(errno.ENOENT, knob), knob, owner=tmp_path)
    assert type(err) is KnobMissing
    assert str(knob) in str(err)


def test_enoent_with_owner_gone_is_device_gone(tmp_path: Path) -> None:
    owner = tmp_path / "loop3"
    knob = owner / "queue" / "read_ahead_kb"
    err = translate(_oserror(errno.ENOENT, knob), knob, owner=owner)
    assert type(err) is DeviceGone
    assert "loop3" in str(err)


def test_enoent_without_owner_is_knob_missing(tmp_path: Path) -> None:
    assert type(translate(_oserror(errno.ENOENT, tmp_path / "x"), tmp_path / "x")) is KnobMissing


@pytest.mark.parametrize(("code", "kind"), [
    (errno.EACCES, NotPermitted),
    (errno.EPERM, NotPermitted),
    (errno.EROFS, NotPermitted),  # sysfs mounted read-only in a container
    (errno.EINVAL, ValueRejected),  # e.g. "abc" into read_ahead_kb
    (errno.ERANGE, ValueRejected),
    (errno.EBUSY, ValueRejected),
    (errno.ENODEV, DeviceGone),  # read of a loop device being torn down
    (errno.ENXIO, DeviceGone),
])
def test_errno_maps_to_one_domain_error(tmp_path: Path, code: int, kind: type) -> None:
    path = tmp_path / "knob"
    err = translate(_oserror(code, path), path, owner=tmp_path)
    assert type(err) is kind
    assert os.strerror(code) in str(err)


def test_unexpected_errno_is_still_reported(tmp_path: Path) -> None:
    path = tmp_path / "knob"
    err = translate(_oserror(errno.EIO, path), path)
    assert type(err) is MltuneError
    assert os.strerror(errno.EIO) in str(err)
