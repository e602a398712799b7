"""The journal of original values: first original only, newest-first restore, crash recovery
within a boot, and a corrupt file that stops everything instead of being reset."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from mltune.errors import NotPermitted, StateError
from mltune.journal import Entry, Journal
from mltune.statefile import write_json
from mltune.sysfs import Root

STATE = Path("/state")
BOOT_ID = "0a99bda6-424b-48bc-aac0-4020c6ed5072"  # fixtures/linux-6.18-vm boot_id
VDA = "sys/block/vda/queue/read_ahead_kb"
LOOP0 = "sys/block/loop0/queue/read_ahead_kb"


class RecordingRoot(Root):
    """A root that remembers the order of writes and can refuse some paths."""

    def __init__(self, root: str, refuse: tuple[str, ...] = ()) -> None:
        super().__init__(root)
        self.writes: list[tuple[str, str]] = []
        self.refuse = refuse

    def write(self, rel: str, value: str, owner: str | None = None) -> None:
        if rel in self.refuse:
            raise NotPermitted(f"{rel}: not permitted (Operation not permitted)")
        self.writes.append((rel, value))
        super().write(rel, value, owner)


def entry(path: str, original: str, t: float = 1.0) -> Entry:
    dev = path.split("/")[2]
    return Entry("readahead", dev, path, f"sys/block/{dev}", original, t)


def on_disk() -> dict:
    return json.loads((STATE / "journal.json").read_text())


@pytest.fixture
def root(fake_root: Root) -> RecordingRoot:
    return RecordingRoot(str(fake_root.root))


def test_boot_id_comes_from_proc(root: RecordingRoot) -> None:
    assert Journal(STATE, root).boot_id == BOOT_ID


def test_record_keeps_only_the_first_original_per_knob(root: RecordingRoot) -> None:
    j = Journal(STATE, root)
    j.record(entry(VDA, "8192"))
    j.record(entry(VDA, "256", t=2.0))  # mltune's own earlier write: not an original
    assert [e.original for e in j.entries] == ["8192"]
    assert j.original(VDA) == "8192"
    assert [e["original"] for e in on_disk()["entries"]] == ["8192"]
    assert on_disk()["boot_id"] == BOOT_ID


def test_record_is_on_disk_before_returning(root: RecordingRoot) -> None:
    j = Journal(STATE, root)
    j.record(entry(LOOP0, "128"))
    # A second journal object (a restarted process) sees the entry.
    boot, entries = Journal(STATE, root).load()
    assert (boot, entries) == (BOOT_ID, [entry(LOOP0, "128")])


def test_forget_drops_one_knob_on_disk_and_restore_skips_it(root: RecordingRoot) -> None:
    # Someone else took the knob over: their value is not ours to undo, even after a crash.
    j = Journal(STATE, root)
    j.record(entry(VDA, "8192"))
    j.record(entry(LOOP0, "128"))
    j.forget(LOOP0)
    assert [e["target"] for e in on_disk()["entries"]] == ["vda"]
    root.writes.clear()
    assert j.restore() == [f"restored readahead/vda /{VDA} = 8192"]
    assert root.writes == [(VDA, "8192")]


def test_forget_of_an_unknown_knob_leaves_the_file_alone(root: RecordingRoot) -> None:
    j = Journal(STATE, root)
    j.forget(VDA)
    assert not (STATE / "journal.json").exists()


def test_restore_writes_originals_newest_first(root: RecordingRoot) -> None:
    j = Journal(STATE, root)
    j.record(entry(VDA, "8192", t=1.0))
    j.record(entry(LOOP0, "128", t=2.0))
    root.write(VDA, "1024")
    root.write(LOOP0, "4")
    root.writes.clear()
    notes = j.restore()
    assert root.writes == [(LOOP0, "128"), (VDA, "8192")]
    assert (root.read(VDA), root.read(LOOP0)) == ("8192", "128")
    assert notes == [f"restored readahead/loop0 /{LOOP0} = 128",
                     f"restored readahead/vda /{VDA} = 8192"]
    assert j.entries == [] and on_disk()["entries"] == []


def test_restore_only_some_targets_keeps_the_others(root: RecordingRoot) -> None:
    j = Journal(STATE, root)
    j.record(entry(VDA, "8192"))
    j.record(entry(LOOP0, "128"))
    j.restore(only={"loop0"})
    assert root.writes == [(LOOP0, "128")]
    assert [e.target for e in j.entries] == ["vda"]


def test_restore_of_a_removed_device_drops_its_entry(root: RecordingRoot) -> None:
    j = Journal(STATE, root)
    j.record(entry(LOOP0, "128"))
    shutil.rmtree(root.path("sys/block/loop0"))
    assert j.restore() == ["readahead/loop0 gone; nothing to restore"]
    assert j.entries == []


def test_failed_restore_is_reported_and_kept_for_retry(fake_root: Root) -> None:
    root = RecordingRoot(str(fake_root.root), refuse=(VDA,))
    j = Journal(STATE, root)
    j.record(entry(VDA, "8192", t=1.0))
    j.record(entry(LOOP0, "128", t=2.0))
    notes = j.restore()
    assert notes[1].startswith("could not restore readahead/vda: ")
    assert [e.target for e in j.entries] == ["vda"]
    assert [e["target"] for e in on_disk()["entries"]] == ["vda"]


def test_recover_after_crash_in_same_boot_restores(root: RecordingRoot) -> None:
    crashed = Journal(STATE, root)
    crashed.record(entry(VDA, "8192"))
    root.write(VDA, "1024")  # the crashed run's write
    notes = Journal(STATE, root).recover()
    assert notes == [f"restored readahead/vda /{VDA} = 8192"]
    assert root.read(VDA) == "8192"
    assert on_disk()["entries"] == []


def test_recover_after_reboot_discards_without_writing(root: RecordingRoot) -> None:
    write_json(STATE / "journal.json", {
        "format": "mltune-journal", "version": 1, "boot_id": "an-earlier-boot",
        "entries": [{"driver": "readahead", "target": "vda", "path": VDA,
                     "owner": "sys/block/vda", "original": "128", "time": 1.0}]})
    notes = Journal(STATE, root).recover()
    assert notes == ["journal from another boot (an-earlier-boot) discarded: "
                     "kernel defaults are back"]
    assert root.writes == []
    assert root.read(VDA) == "8192"
    assert on_disk()["entries"] == []


def test_recover_without_a_journal_does_nothing(root: RecordingRoot) -> None:
    assert Journal(STATE, root).recover() == []
    assert not STATE.exists()


def test_torn_journal_stops_tuning_and_is_not_rewritten(root: RecordingRoot) -> None:
    STATE.mkdir()
    torn = '{"boot_id": "0a99bda6", "entries": [{"driver": "readahead", "targ'
    (STATE / "journal.json").write_text(torn)
    with pytest.raises(StateError, match="journal /state/journal.json is unreadable or corrupt"):
        Journal(STATE, root).recover()
    assert (STATE / "journal.json").read_text() == torn
    assert root.writes == []


@pytest.mark.parametrize("raw", [
    {"format": "mltune-journal", "version": 2, "boot_id": BOOT_ID, "entries": []},
    {"format": "mltune-journal", "version": 1, "boot_id": BOOT_ID},
    {"format": "mltune-journal", "version": 1, "boot_id": BOOT_ID,
     "entries": [{"driver": "readahead"}]},
    ["not", "a", "mapping"],
], ids=["future-version", "no-entries", "entry-fields-missing", "list"])
def test_journal_of_unknown_shape_stops_tuning(root: RecordingRoot, raw: object) -> None:
    STATE.mkdir()
    (STATE / "journal.json").write_text(json.dumps(raw))
    with pytest.raises(StateError):
        Journal(STATE, root).recover()
    assert json.loads((STATE / "journal.json").read_text()) == raw


def test_atomic_writes_leave_no_temporary_files(root: RecordingRoot) -> None:
    j = Journal(STATE, root)
    for i, path in enumerate((VDA, LOOP0)):
        j.record(entry(path, str(128 * (i + 1))))
    j.restore()
    assert os.listdir(STATE) == ["journal.json"]


def test_failed_write_keeps_the_old_file_and_no_temporary(fs) -> None:
    write_json(STATE / "j.json", {"v": 1})
    with pytest.raises(TypeError):
        write_json(STATE / "j.json", {"v": object()})  # fails mid-dump
    assert json.loads((STATE / "j.json").read_text()) == {"v": 1}
    assert os.listdir(STATE) == ["j.json"]
