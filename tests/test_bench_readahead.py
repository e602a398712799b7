"""bench/readahead.py without a lab: the regime plan, and the report of synthetic rounds.

No root, no fio: rounds are built from made-up fio results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from mltune.lab import FioResult

from tests.test_bench_aggregate import BENCH, _load

_load("aggregate", BENCH / "aggregate.py")
bench = _load("bench_readahead", BENCH / "readahead.py")

PHASES = ("seq", "mmap-rand")


def test_default_outside_the_sweep_is_measured_and_4096_inside_it_is_reused():
    plan = bench.plan_regimes([4, 4096], default=2560, skip_mltune=False)
    assert [(r.name, r.value, r.same_as) for r in plan] == [
        ("static-4", 4, None), ("static-4096", 4096, None), ("default", 2560, None),
        ("tuned-throughput-performance", 4096, "static-4096"),
        ("oracle", None, None), ("mltune", None, None)]


def test_default_equal_to_4096_outside_the_sweep_is_measured_once():
    plan = bench.plan_regimes([4], default=4096, skip_mltune=True)
    assert [(r.name, r.same_as) for r in plan] == [
        ("static-4", None), ("default", None), ("tuned-throughput-performance", "default"),
        ("oracle", None)]


def test_one_round_keeps_the_audit_log_name_of_a_single_run():
    json_path = Path("/x/readahead-1.json")
    assert bench.audit_copy(json_path, 0, 1) == Path("/x/readahead-1.audit.jsonl")
    assert bench.audit_copy(json_path, 1, 3) == Path("/x/readahead-1.r2.audit.jsonl")


def _run(name: str, mbps: list[float], values: list[int | None]) -> object:
    phases = tuple(
        bench.PhaseRun(p, v, 100.0 + i, 101.0 + i, FioResult(p, 1.0, int(m * 1e6), 1000), 0.0)
        for i, (p, m, v) in enumerate(zip(PHASES, mbps, values, strict=True)))
    return bench.RegimeRun(name, phases)


def _agent(settle: tuple[float, ...], cpu: float) -> object:
    return bench.AgentStats(cpu_percent=cpu, median_tick_ms=3.0, peak_rss_mb=70.0,
                            settle_s=settle, decisions=10, changes=2, exit_code=0,
                            exited_early=False, restored=True, chosen=(2048, 4))


def _report(rounds: int, skip_mltune: bool = False) -> object:
    plan = bench.plan_regimes([4, 2048], default=2048, skip_mltune=skip_mltune)
    made = []
    for k in range(rounds):
        slow = 1 + k  # the host slows down round by round
        s4 = _run("static-4", [100 / slow, 50 / slow], [4, 4])
        s2048 = _run("static-2048", [1500 / slow, 2 / slow], [2048, 2048])
        runs = (s4, s2048,
                bench.RegimeRun("default", s2048.phases, same_as="static-2048"),
                _run("tuned-throughput-performance", [1400 / slow, 1 / slow], [4096, 4096]),
                _run("oracle", [1450 / slow, 48 / slow], [2048, 4]),
                *[_run("mltune", [1300 / slow, 45 / slow], [None, None])] * (not skip_mltune))
        order = tuple(bench.round_order([r.name for r in plan if r.same_as is None], k, rounds))
        agent = None if skip_mltune else _agent((0.5, 1.0 + k), 0.4)
        made.append(bench.Round(k + 1, order, runs, agent))
    return bench.Report(PHASES, 2048, plan, tuple(made), "vda", "loop9")


def _args(rounds: int) -> argparse.Namespace:
    return argparse.Namespace(duration=2.0, reopen=0.5, shuffle=None, repeat=rounds,
                              device=None, agent_cmd="x", skip_mltune=False, reclaim=False,
                              late_oracle=None)


@pytest.mark.parametrize("rounds", [1, 3])
def test_json_holds_every_raw_round_and_the_aggregates(rounds):
    data = json.loads(json.dumps(bench.to_json(_report(rounds), _args(rounds), [4, 2048])))
    assert data["version"] == 2 and data["rounds_complete"] == rounds
    assert [r["round"] for r in data["rounds"]] == list(range(1, rounds + 1))
    mltune = next(r for r in data["summary"]["regimes"] if r["name"] == "mltune")
    # Every round slows all regimes alike: per-round scores agree, and with the medians.
    assert mltune["round_scores"] == pytest.approx([mltune["score_of_medians"]] * rounds)
    assert mltune["score_of_medians"] == pytest.approx((1300 / 1500 * 45 / 50) ** 0.5)
    assert [b["value"] for b in data["summary"]["best_static"]] == [2048, 4]
    assert data["summary"]["agent"]["settle_max_s"] == rounds
    raw = data["rounds"][-1]["regimes"][-1]["phases"][0]
    assert raw["phase"] == "seq" and raw["other_io_mb"] == 0.0


@pytest.mark.parametrize("rounds", [1, 3])
def test_printed_report_names_every_regime(rounds, capsys):
    bench.print_report(_report(rounds))
    out = capsys.readouterr().out
    for name in ("static-4", "default (2048)", "tuned-throughput-perf (4096)", "oracle",
                 "mltune"):
        assert name in out
    assert "best static read_ahead_kb per phase" in out
    assert ("per round" in out) == (rounds > 1)
    assert "restored: yes" in out


def test_repeats_without_the_agent_report_statics_and_oracle_only(capsys):
    report = _report(3, skip_mltune=True)
    data = bench.to_json(report, _args(3), [4, 2048])
    assert data["summary"]["agent"] is None
    assert [r["name"] for r in data["summary"]["regimes"]][-1] == "oracle"
    bench.print_report(report)
    out = capsys.readouterr().out
    assert "mltune: skipped" in out and "settle" not in out


def test_the_late_oracle_runs_after_the_oracle_when_asked():
    plan = bench.plan_regimes([4], default=2560, skip_mltune=False, late_oracle=True)
    assert [r.name for r in plan][-3:] == ["oracle", "oracle-late", "mltune"]


class _FakeRun:
    def __init__(self, calls: list[tuple], phase: str) -> None:
        self.calls, self.phase = calls, phase

    def wait(self) -> FioResult:
        self.calls.append(("wait", self.phase))
        return FioResult(self.phase, 1.0, 1_000_000, 100)

    def stop(self) -> None:
        pass


class _FakeLab:
    original_read_ahead_kb = 2560

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def drop_caches(self) -> None:
        self.calls.append(("drop",))

    def reclaim(self) -> None:
        self.calls.append(("reclaim",))

    def set_read_ahead_kb(self, kb: int) -> None:
        self.calls.append(("set", kb))

    def start(self, phase: str, seconds: float, reopen: float) -> _FakeRun:
        self.calls.append(("start", phase))
        return _FakeRun(self.calls, phase)


def _session(lab: _FakeLab) -> object:
    args = argparse.Namespace(reclaim=True, duration=2.0, reopen=0.5)
    other = argparse.Namespace(sectors=lambda: None)
    return bench.Session(lab, PHASES, args, lambda line: None, other)


@pytest.mark.parametrize("late", [0.0, 0.01])
def test_the_oracle_writes_at_phase_start_and_the_late_one_after_fio_started(late):
    lab = _FakeLab()
    run = bench.run_phases(_session(lab), "oracle", [2048, 4], late=late)
    if late:
        # The device default before the first phase (where mltune starts too), then each
        # phase opens its files at the phase before's value and gets its own while it runs.
        assert lab.calls == [("drop",), ("set", 2560), ("start", "seq"), ("set", 2048),
                             ("wait", "seq"), ("reclaim",), ("start", "mmap-rand"), ("set", 4),
                             ("wait", "mmap-rand")]
    else:
        assert lab.calls == [("drop",), ("set", 2048), ("start", "seq"), ("wait", "seq"),
                             ("reclaim",), ("set", 4), ("start", "mmap-rand"),
                             ("wait", "mmap-rand")]
    assert [p.value for p in run.phases] == [2048, 4]


def test_printed_rounds_show_the_late_oracle(capsys):
    report = _report(2)
    plan = bench.plan_regimes([4, 2048], default=2048, skip_mltune=False, late_oracle=True)
    rounds = []
    for rnd in report.rounds:
        late = _run("oracle-late", [1200, 40], [2048, 4])
        runs = rnd.regimes[:5] + (late,) + rnd.regimes[5:]
        rounds.append(bench.Round(rnd.index, (*rnd.order, "oracle-late"), runs, rnd.agent))
    report = bench.Report(PHASES, 2048, plan, tuple(rounds), "vda", "loop9")
    bench.print_report(report)
    out = capsys.readouterr().out
    assert out.count("oracle-late") >= 2  # a row of the main table, a column per round


@pytest.mark.parametrize("late", ["0", "8", "-1"])
def test_a_late_oracle_outside_the_phase_is_refused(late):
    args = bench.parse_args(["--duration", "8", "--late-oracle", late, "--skip-mltune"])
    with pytest.raises(bench.BadInput, match="--late-oracle"):
        bench.check_args(args)
