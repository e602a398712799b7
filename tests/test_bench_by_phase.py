"""bench/by_phase.py: per-pattern ratios to each round's best static, over stored runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_bench_aggregate import BENCH, _load

by_phase = _load("by_phase", BENCH / "by_phase.py")


def _run(name: str, mbps: list[float]) -> dict:
    patterns = ("seq", "mmap-rand")
    return {"name": name, "phases": [{"pattern": p, "phase": p, "mbps": m}
                                     for p, m in zip(patterns, mbps, strict=True)]}


def _bench(scale: float) -> dict:
    # As bench/readahead.py stores a round: its regimes, and the best static per phase.
    return {"rounds": [{"regimes": [
        _run("static-4", [100 * scale, 30]), _run("static-2048", [1000 * scale, 1]),
        _run("default", [900 * scale, 2]), _run("oracle", [950 * scale, 27]),
        _run("mltune", [800 * scale, 33]), {"name": "oracle-late", "phases": []}],
        "best_static": [{"phase": "seq", "value": 2048, "mbps": 1000 * scale},
                        {"phase": "mmap-rand", "value": 4, "mbps": 30}]}]}


def test_ratios_are_to_each_round_s_best_static_and_pooled_over_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for k, scale in enumerate((1.0, 2.0)):  # a faster host: the ratios stay
        files.append(tmp_path / f"r{k}.json")
        files[-1].write_text(json.dumps(_bench(scale)))
    by_phase.main([*map(str, files), "--regimes", "mltune,oracle,oracle-late"])
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "| seq | 2 | 0.80 | 0.95 | - |"
    assert out[3] == "| mmap-rand | 2 | 1.10 | 0.90 | - |"


def test_an_unreadable_file_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{")
    with pytest.raises(SystemExit) as exc:
        by_phase.main([str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(bad) in err
