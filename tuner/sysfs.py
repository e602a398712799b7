"""Access to /proc and /sys through one injectable root.

Every read and write of a kernel file goes through :class:`Root`. Tests point it at a
pyfakefs tree copied from a real kernel; containers point it at a host mount.
"""

from __future__ import annotations

import errno
import os
import reprlib
from pathlib import Path

from .errors import (
    DeviceGone,
    KnobMissing,
    MltuneError,
    NotPermitted,
    Unparsable,
    ValueRejected,
)
from .procfs import parse_u64

_RAISE = object()
_PATHS_KEPT = 256


def translate(err: OSError, path: Path, owner: Path | None = None) -> MltuneError:
    """Map an OSError on ``path`` to a domain error.

    ``owner`` is the directory whose disappearance means "device gone" (e.g.
    ``/sys/block/loop3``): a missing knob under a live owner is a different problem
    (the kernel lacks the knob) from a missing owner (the device was removed).
    """
    code = err.errno
    if code in (errno.ENODEV, errno.ENXIO):
        return DeviceGone(f"{path}: device gone ({os.strerror(code)})")
    if code == errno.ENOENT:
        if owner is not None and not owner.exists():
            return DeviceGone(f"{owner}: device gone")
        return KnobMissing(f"{path}: no such file")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return NotPermitted(f"{path}: not permitted ({os.strerror(code)})")
    if code in (errno.EINVAL, errno.ERANGE, errno.EBUSY):
        return ValueRejected(f"{path}: value rejected by the kernel ({os.strerror(code)})")
    return MltuneError(f"{path}: {os.strerror(code) if code else err}")


class Root:
    """A filesystem root under which ``proc/`` and ``sys/`` are found (default ``/``)."""

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = Path(root)
        # rel → path: the same few files are read every tick, and building a Path (pathlib
        # parses and joins in Python) cost ~75 us a file with the caches cold between ticks.
        self._paths: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"Root({str(self.root)!r})"

    def path(self, rel: str) -> Path:
        """The real path of ``rel`` (e.g. ``"sys/block/loop0/queue/read_ahead_kb"``)."""
        p = self._paths.get(rel)
        if p is None:
            if len(self._paths) >= _PATHS_KEPT:  # devices come and go: stay bounded
                self._paths.clear()
            p = self._paths[rel] = self.root / rel.lstrip("/")
        return p

    def read(self, rel: str, fallback: object = _RAISE, owner: str | None = None) -> str:
        """Read a small kernel file, stripped. With ``fallback`` a missing file returns it."""
        p = self.path(rel)
        try:
            with open(p, encoding="ascii", errors="replace") as f:
                return f.read().strip()
        except OSError as err:
            if fallback is not _RAISE and err.errno in (errno.ENOENT, errno.ENODEV):
                return fallback  # type: ignore[return-value]
            raise translate(err, p, self.path(owner) if owner else None) from err

    def read_int(self, rel: str, owner: str | None = None) -> int:
        """Read a knob that holds one unsigned integer (``%lu``, like ``read_ahead_kb``)."""
        text = self.read(rel, owner=owner)
        value = parse_u64(text)
        if value is None:
            # repr: the message stays one line whatever the file holds.
            raise Unparsable(f"{self.path(rel)}: not an unsigned integer: {reprlib.repr(text)}")
        return value

    def write(self, rel: str, value: str, owner: str | None = None) -> None:
        """Write ``value`` in one write(2) call, as the kernel expects for sysfs files."""
        p = self.path(rel)
        try:
            # O_TRUNC, as `echo v > file` does: sysfs and tracefs control files accept it
            # (checked on 6.18), and a root that is a plain copy of /sys (tests, --root) would
            # otherwise keep the tail of a longer old value ("256" over "8192" → "2562").
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, value.encode("ascii"))
            finally:
                os.close(fd)
        except OSError as err:
            raise translate(err, p, self.path(owner) if owner else None) from err

    def truncate(self, rel: str) -> None:
        """Open with O_TRUNC, which is how tracefs clears a buffer (``echo > trace``)."""
        p = self.path(rel)
        try:
            os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
        except OSError as err:
            raise translate(err, p) from err

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(rel)))
        except OSError as err:
            raise translate(err, self.path(rel)) from err
