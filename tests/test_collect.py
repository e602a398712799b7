"""`mltune collect` appends passes to a dataset: pass numbers continue, so training's median
over passes sees every pass (a second pass numbered 0 again would replace the first)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mltune import collect as collectmod
from mltune.errors import MltuneError
from mltune.train import load_dataset, perf_table


class Clock:
    """time.sleep advances time.monotonic: the runs take no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


class FakeLab:
    def __init__(self, mbps: float) -> None:
        self.mbps = mbps
        self.value = 0

    def set_read_ahead_kb(self, value: int) -> None:
        self.value = value

    def drop_caches(self) -> None:
        pass

    def start(self, pattern: str, seconds: float) -> Any:
        return SimpleNamespace(wait=lambda: SimpleNamespace(mbps=self.mbps * self.value))


class FakeDriver:
    name = "readahead"
    features = ("ra_kb_log2",)

    def __init__(self, lab: FakeLab) -> None:
        self.lab = lab

    def discover(self) -> list[Any]:
        return [SimpleNamespace(name="loop0")]

    def observe(self, targets: list[Any]) -> dict[str, Any]:
        feats = {"ra_kb_log2": math.log2(self.lab.value)}
        return {"loop0": SimpleNamespace(features=feats, source="perf")}


def _collect(out: Path, mbps: float, repeats: int = 1) -> int:
    lab = FakeLab(mbps)
    return collectmod.collect(lab, FakeDriver(lab), ["seq"], [4, 64], 4.0, out, repeats)


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collectmod, "time", Clock())


def test_a_second_collection_adds_a_pass_instead_of_replacing_the_first(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    assert _collect(out, 1.0) == 6  # 2 values x 3 observations (4 s runs, 1 s apart)
    _collect(out, 3.0)
    _, rows = load_dataset(out)
    assert sorted({r["rep"] for r in rows}) == [0, 1]
    # The median over the two passes, not the second pass alone.
    assert perf_table(rows)["seq"] == {4: 8.0, 64: 128.0}
    assert collectmod.next_rep(out, "readahead") == 2
    assert sum(1 for line in out.read_text().splitlines() if '"format"' in line) == 1


def test_repeats_continue_after_the_last_pass(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    _collect(out, 1.0, repeats=2)
    _collect(out, 1.0, repeats=2)
    assert sorted({r["rep"] for r in load_dataset(out)[1]}) == [0, 1, 2, 3]


def test_a_dataset_cut_by_an_interrupted_collection_is_refused_before_appending(
        tmp_path: Path) -> None:
    # The next row would be glued to the cut one, and training would refuse the file.
    out = tmp_path / "d.jsonl"
    _collect(out, 1.0)
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps({"pattern": "seq", "rep": 7, "value": 4})[:20])
    before = out.read_text()
    with pytest.raises(MltuneError, match="unreadable"):
        _collect(out, 1.0)
    assert out.read_text() == before


def test_a_dataset_of_another_driver_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    out.write_text(json.dumps({"format": "mltune-dataset", "version": 1,
                               "driver": "swappiness", "features": []}) + "\n")
    with pytest.raises(MltuneError, match="of driver 'swappiness', not 'readahead'"):
        collectmod.next_rep(out, "readahead")


def test_a_dataset_with_a_header_only_starts_at_pass_0(tmp_path: Path) -> None:
    # Interrupted before its first run ended: nothing measured yet.
    out = tmp_path / "d.jsonl"
    out.write_text(json.dumps({"format": "mltune-dataset", "version": 1,
                               "driver": "readahead", "features": []}) + "\n")
    assert collectmod.next_rep(out, "readahead") == 0
    assert collectmod.next_rep(tmp_path / "new.jsonl", "readahead") == 0
