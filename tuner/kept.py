"""Kernel files read every tick, read without Python's file objects.

``Root.read`` builds a text file object per call (open, buffer, decoder): ~0.1 ms a file on
this VM between ticks, when nothing of it is in the caches. A /proc file kept open and
re-read from offset 0 costs an lseek and a read; seq_file regenerates it at offset 0
(fs/seq_file.c). Not pread(): pyfakefs does not fake it, and a test's fake descriptor would
reach the real kernel. Only for files that cannot go away (/proc): a sysfs attribute of a
removed device would keep answering through a stale descriptor in a fake tree, so those are
opened each time, still without a file object (:func:`read_once`).
"""

from __future__ import annotations

import errno
import os

from .sysfs import Root, translate

_SIZE = 1 << 16  # /proc/vmstat is ~5 KB


class KeptFile:
    """A /proc file kept open. ``missing_ok``: a file the kernel may lack (PSI) reads as
    ``b""`` instead of raising."""

    def __init__(self, root: Root, rel: str, missing_ok: bool = False) -> None:
        self.path = root.path(rel)
        self.missing_ok = missing_ok
        self._fd: int | None = None
        self._missing = False

    def read(self) -> bytes:
        if self._fd is None:
            if self._missing:
                return b""
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError as err:
                if self.missing_ok and err.errno == errno.ENOENT:
                    self._missing = True
                    return b""
                raise translate(err, self.path) from err
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            chunks = [os.read(self._fd, _SIZE)]
            while len(chunks[-1]) == _SIZE:  # seq_file fills a read while it has more
                chunks.append(os.read(self._fd, _SIZE))
            return b"".join(chunks)
        except OSError as err:
            raise translate(err, self.path) from err

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_once(root: Root, rel: str, owner: str | None = None) -> str:
    """``Root.read`` without a file object: open, one read, close; stripped text."""
    path = root.path(rel)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.read(fd, 4096).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
    except OSError as err:
        raise translate(err, path, root.path(owner) if owner else None) from err


class KeptAttr:
    """A sysfs attribute read every tick through a kept descriptor: lseek and read instead
    of a path walk, an open and a close (kernfs regenerates the text at offset 0).

    A removed device's attribute answers ENODEV through the kept descriptor; a fake tree
    (tests, ``--root``) would keep answering from the deleted file, whose link count is 0
    then. Either way, and after any error, the attribute is opened again by path
    (:func:`read_once`), whose error tells a removed device from a missing knob."""

    def __init__(self, root: Root, rel: str, owner: str | None = None) -> None:
        self.root, self.rel, self.owner = root, rel, owner
        self._fd: int | None = None

    def read(self) -> str:
        fd = self._fd
        if fd is not None:
            try:
                if os.fstat(fd).st_nlink:
                    os.lseek(fd, 0, os.SEEK_SET)
                    return os.read(fd, 4096).decode("ascii", "replace").strip()
            except OSError:
                pass  # not swallowed: the read by path below meets it again, or recovers
            self.close()
        path = self.root.path(self.rel)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as err:
            raise translate(err, path, self.root.path(self.owner) if self.owner else None) \
                from err
        try:
            text = os.read(fd, 4096).decode("ascii", "replace").strip()
        except OSError as err:
            os.close(fd)
            raise translate(err, path) from err
        self._fd = fd
        return text

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
