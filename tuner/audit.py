"""The audit log (``<state-dir>/audit.jsonl``): one JSON object per line, appended.

Kept open between ticks. Opening it every tick cost an open, an fstat, three lseeks, an
ioctl and a close, and a text-mode file object, for each line written (0.2-0.4 ms of a tick
in ``bench/tick.py``, more than the model). As logging's WatchedFileHandler does, the path
is checked each write: a log rotated away (renamed or removed) is reopened, so a logrotate
``create`` rotation starts a new file instead of writing on into the old one.

Bounded by itself (``max_bytes``): past it, ``audit.jsonl`` becomes ``audit.jsonl.1``,
replacing the one before. A line per target and second is ~1-2 KB, 100-170 MB a day, and
the default state directory, /run/mltune, is a tmpfs: memory. Readers take ``.1`` first
(:func:`paths`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("mltune")


def dumps(obj: dict[str, Any]) -> str:
    """One audit object as compact JSON text, without the newline."""
    return json.dumps(obj, separators=(",", ":"))


def paths(path: Path) -> list[Path]:
    """The log's files, oldest first: the rotated one, if any, then ``path``."""
    return [path.with_name(path.name + ".1"), path]


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = 0) -> None:
        self.path = path
        self.max_bytes = max_bytes  # 0: no limit
        self._fd: int | None = None
        self._id: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._size = 0  # bytes in the open file

    def write(self, lines: list[str]) -> None:
        """Append ``lines`` (JSON texts) in one write. A failure is logged, not raised: the
        audit log never stops the agent (a full disk must not keep a knob from being
        restored)."""
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        try:
            fd = self._open()
            if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                os.replace(self.path, paths(self.path)[0])
                fd = self._open()
            view = memoryview(data)
            while view:  # a full disk writes part and says so by the count, not an error
                view = view[os.write(fd, view):]
            self._size += len(data)
        except OSError as err:
            self.close()  # opened again next time: the directory may come back
            log.warning("audit log %s not written: %s", self.path, err.strerror)

    def _open(self) -> int:
        try:
            st = os.stat(self.path)
            here: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            here = None
        if self._fd is not None and here == self._id:
            return self._fd
        self.close()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        st = os.fstat(fd)
        self._fd, self._id, self._size = fd, (st.st_dev, st.st_ino), st.st_size
        return fd

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd, self._id = self._fd, None, None
            os.close(fd)
