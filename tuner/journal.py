"""The journal of original values: what to put back, even after a crash.

Before mltune's first write to a knob, the original value is recorded here and the file is
replaced atomically. Restoring goes newest-first (like tuned), so stacked changes unwind in
order. A journal from the same boot found at start means the last run crashed: restore it.
A journal from another boot is discarded: the kernel defaults came back with the reboot.
A journal that cannot be parsed stops tuning; it is never silently reset.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import DeviceGone, MltuneError, StateError
from .statefile import write_json
from .sysfs import Root

log = logging.getLogger(__name__)
FORMAT = "mltune-journal"
VERSION = 1


@dataclass(frozen=True)
class Entry:
    driver: str
    target: str
    path: str
    owner: str
    original: str
    time: float


class Journal:
    def __init__(self, state_dir: Path, root: Root) -> None:
        self.path = state_dir / "journal.json"
        self.root = root
        self.boot_id = root.read("proc/sys/kernel/random/boot_id", fallback="unknown")
        self.entries: list[Entry] = []

    def load(self) -> tuple[str, list[Entry]]:
        """(boot_id, entries) of the file on disk; ("", []) if there is none."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return "", []
        except (OSError, ValueError) as err:
            raise StateError(f"journal {self.path} is unreadable or corrupt ({err}); "
                             "fix or remove it after checking the knobs it lists") from err
        try:
            if raw["format"] != FORMAT or raw["version"] != VERSION:
                raise StateError(f"journal {self.path}: unknown format/version")
            return str(raw["boot_id"]), [Entry(**e) for e in raw["entries"]]
        except (KeyError, TypeError) as err:
            raise StateError(f"journal {self.path} is corrupt ({err})") from err

    def save(self) -> None:
        """Raises StateError if the state directory is unwritable or full: the caller must
        then not write the knob, since its original could not be kept."""
        try:
            write_json(self.path, {"format": FORMAT, "version": VERSION,
                                   "boot_id": self.boot_id,
                                   "entries": [asdict(e) for e in self.entries]})
        except OSError as err:
            raise StateError(f"journal {self.path} not saved ({err.strerror}); "
                             "not writing knobs whose originals cannot be kept") from err

    def recover(self) -> list[str]:
        """At start: restore what a crashed run left (same boot), else discard it."""
        boot, entries = self.load()
        if not entries:
            return []
        if boot != self.boot_id:
            self.entries = []
            self.save()
            return [f"journal from another boot ({boot}) discarded: kernel defaults are back"]
        self.entries = entries
        return self.restore()

    def record(self, entry: Entry) -> None:
        """Remember an original before the first write to its knob (only the first)."""
        if any(e.path == entry.path for e in self.entries):
            return
        self.entries.append(entry)
        try:
            self.save()
        except StateError:
            self.entries.pop()  # not on disk, so not recorded
            raise

    def forget(self, path: str) -> None:
        """Drop the original of a knob someone else took over: theirs is not ours to undo."""
        kept = [e for e in self.entries if e.path != path]
        if len(kept) != len(self.entries):
            self.entries = kept
            self.save()

    def original(self, path: str) -> str | None:
        return next((e.original for e in self.entries if e.path == path), None)

    def restore(self, only: set[str] | None = None) -> list[str]:
        """Write originals back, newest first. Failures are reported and kept for retry,
        except a device that is gone (nothing left to restore)."""
        notes: list[str] = []
        keep: list[Entry] = []
        for e in reversed(self.entries):
            if only is not None and e.target not in only:
                keep.append(e)
                continue
            try:
                self.root.write(e.path, e.original, owner=e.owner)
                notes.append(f"restored {e.driver}/{e.target} /{e.path} = {e.original}")
            except DeviceGone:
                notes.append(f"{e.driver}/{e.target} gone; nothing to restore")
            except MltuneError as err:
                notes.append(f"could not restore {e.driver}/{e.target}: {err}")
                keep.append(e)
        self.entries = list(reversed(keep))
        try:
            self.save()
        except StateError as err:
            notes.append(str(err))
        return notes
