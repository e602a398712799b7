"""The loop with the regression guard and the modes: measured outcomes, reverts, vetoes,
promotion, EMERGENCY (restoring originals), resume, new targets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mltune.errors import ValueRejected
from mltune.journal import Journal
from mltune.loop import REDISCOVER_TICKS, Agent
from mltune.modes import ModeConfig
from mltune.policies.guard import MeasuredGain, RegressionGuard, Settling
from mltune.policies.limits import AllowedRange, Cooldown, MinGain
from mltune.recent import RecentScores
from mltune.sysfs import Root
from mltune.trials import GuardConfig, Judge

from .test_loop import PREFERS_1024, FakeDriver, PressuredDriver, StubModel, audit_lines


@pytest.fixture
def root(tmp_path: Path) -> Root:
    for name in ("a", "b"):
        d = tmp_path / "root" / "sys" / "fake" / name
        d.mkdir(parents=True)
        (d / "knob").write_text("4\n")
    return Root(tmp_path / "root")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


def guarded_agent(root: Root, state: Path, drv: FakeDriver | None = None,
                  start: str = "collaboration", promote_after: int = 3) -> Agent:
    drv = drv or FakeDriver(root, ["a"])
    policies = [AllowedRange(4, 4096), RegressionGuard(), Cooldown(0.0), MinGain(0.05)]
    return Agent(drv, StubModel(PREFERS_1024), policies, drv.discover(), Journal(state, root),
                 state / "audit.jsonl",
                 mode_cfg=ModeConfig(start=start, promote_after=promote_after),
                 # One baseline tick: these tests are about what the loop does with verdicts.
                 judge=Judge(GuardConfig(window_ticks=2, settle_ticks=1, tolerance=0.3,
                                         min_before=1)))


def outcomes(state: Path) -> list[tuple[str, str]]:
    return [(x["verdict"], x["reason"]) for x in audit_lines(state) if x["kind"] == "outcome"]


def test_a_change_that_made_things_worse_is_reverted_and_its_value_barred(
        root: Root, state: Path) -> None:
    a = guarded_agent(root, state)
    a.driver.rewards = [100, 90, 20, 25, 400]  # before; settle; two at 1024; after revert
    assert a.tick()[0].written == "1024"
    assert a.last_step == {"a": (4, 1024)}  # a step further than it may need less gain
    assert [a.tick()[0].written for _ in range(2)] == [None, None]  # settle, 1st measure
    d = a.tick()[0]
    assert (d.written, d.chosen) == ("4", 4)
    assert d.note == "reverted 1024 → 4: reward 0.23x of before (< 0.70)"
    assert a.last_step == {}  # a revert is no direction to go further in
    assert root.read("sys/fake/a/knob") == "4"
    assert outcomes(state) == [("reverted", "reward 0.23x of before (< 0.70)")]
    assert a.modes["a"].mode == "collaboration"  # one revert: the value is barred, no more
    # The model still ranks 1024 first; it is barred, the next best (64) is tried instead.
    d = a.tick()[0]
    assert (d.best, d.written) == (64, "64")
    # That tick settled after the revert: it is no baseline, the one before 1024 is.
    assert a.judge.trials["a"].before == (100,)


def test_a_change_measured_as_a_gain_is_kept_and_counts_towards_promotion(
        root: Root, state: Path) -> None:
    a = guarded_agent(root, state, promote_after=1)
    a.driver.rewards = [100, 50, 300, 310]
    for _ in range(4):
        a.tick()
    assert root.read("sys/fake/a/knob") == "1024"
    assert outcomes(state) == [("kept", "reward 3.05x of before")]
    assert a.modes["a"].mode == "recommendation"
    saved = json.loads((state / "state.json").read_text())
    assert saved["modes"]["a"] == {"mode": "recommendation",
                                   "why": "1 changes in a row measured as gains"}
    out = next(x for x in audit_lines(state) if x["kind"] == "outcome")
    first = next(x for x in audit_lines(state) if x["kind"] == "decision")
    assert out["decision"] == first["id"]
    assert (out["before"], out["after"]) == (100, 305)
    assert out["predicted"] == pytest.approx(0.95 / 0.30)


def test_repeated_refused_writes_mean_emergency_with_the_original_restored(
        root: Root, state: Path) -> None:
    a = guarded_agent(root, state, start="recommendation")
    a.tick()  # 4 → 1024 (no reward measured: inconclusive, nothing held)
    assert root.read("sys/fake/a/knob") == "1024"
    a.model.scores = {4: 0.1, 64: 0.99, 1024: 0.2}
    a.driver.fail_apply["a"] = ValueRejected("sys/fake/a/knob: value rejected")
    notes = [a.tick()[0].note for _ in range(3)]
    assert notes == ["write failed (see log)"] * 3
    assert a.modes["a"].mode == "emergency"
    assert root.read("sys/fake/a/knob") == "4"  # the original, restored on entering
    assert Journal(state, root).load()[1] == []
    d = a.tick()[0]
    assert (d.mode, d.written) == ("emergency", None)
    assert d.note.startswith("emergency, hands off: 3 failed writes in a row")
    # `mltune resume a` lifts it, cautiously.
    (state / "resume-a").write_text("")
    a.poll_resume()
    assert a.modes["a"].mode == "learning"


def test_extreme_memory_pressure_means_emergency_and_nothing_written(
        root: Root, state: Path) -> None:
    drv = PressuredDriver(root, ["a"], {"psi_mem_full": 95.0})
    a = guarded_agent(root, state, drv)
    d = a.tick()[0]
    assert (d.mode, d.written) == ("emergency", None)
    assert d.note == ("emergency, hands off: extreme pressure: "
                      "memory_full_avg10 95% >= 90%")
    assert drv.applied == []


def test_a_target_that_appears_later_is_picked_up(root: Root, state: Path) -> None:
    a = guarded_agent(root, state)
    a.driver.names.append("b")
    for _ in range(REDISCOVER_TICKS - 1):
        a.tick()
    assert [t.name for t in a.targets] == ["a"]
    a.tick()
    assert [t.name for t in a.targets] == ["a", "b"]
    assert [d.target for d in a.tick()] == ["a", "b"]


def test_a_target_that_comes_back_after_removal_is_picked_up_again(
        root: Root, state: Path) -> None:
    a = guarded_agent(root, state, FakeDriver(root, ["a", "b"]))
    a.tick()
    shutil.rmtree(root.path("sys/fake/b"))
    a.tick()
    assert [t.name for t in a.targets] == ["a"]
    (root.path("sys/fake/b")).mkdir()
    root.path("sys/fake/b/knob").write_text("4\n")
    for _ in range(REDISCOVER_TICKS):
        a.tick()
    assert [t.name for t in a.targets] == ["a", "b"]


def test_a_right_change_from_a_near_zero_score_does_not_demote(
        root: Root, state: Path) -> None:
    # Seen in the benchmark: mmap random reads at 2560, scored 0.0071 (4: 0.815). The raw
    # ratio "predicted" 114x; the 25.9x measured read as over-promising by more than 4x and
    # demoted a right change to learning. Scores under SCORE_FLOOR count as SCORE_FLOOR.
    a = guarded_agent(root, state, promote_after=5)
    a.model.scores = {4: 0.0071, 64: 0.2, 1024: 0.815}
    a.driver.rewards = [100, 50, 2590, 2590]
    for _ in range(4):
        a.tick()
    out = next(x for x in audit_lines(state) if x["kind"] == "outcome")
    assert (out["verdict"], out["predicted"]) == ("kept", pytest.approx(0.815 / 0.05))
    assert a.modes["a"].mode == "collaboration"


def settling_agent(root: Root, state: Path) -> Agent:
    drv = FakeDriver(root, ["a"])
    policies = [AllowedRange(4, 4096), RegressionGuard(), Settling(), Cooldown(0.0),
                MinGain(0.05)]
    return Agent(drv, StubModel(PREFERS_1024), policies, drv.discover(), Journal(state, root),
                 state / "audit.jsonl", judge=Judge(GuardConfig(window_ticks=2)))


def test_no_change_back_on_the_tick_right_after_a_write(root: Root, state: Path) -> None:
    # Seen in the benchmark: 2048 → 4 on mmap random reads (predicted +130 %), no reward
    # measured at 2048 (the trial closed inconclusive), and the next tick, whose window
    # straddled the write, scored 16 over 4 by +11 %: written, measured 0.68x, reverted 4 s
    # later.
    a = settling_agent(root, state)
    assert a.tick()[0].written == "1024"  # +217 %; no rewards: the trial closes inconclusive
    a.model.scores = {4: 0.30, 64: 0.66, 1024: 0.60}  # +10 %: enough but right after a write
    d = a.tick()[0]
    assert (d.best, d.written) == (64, None)
    assert {"policy": "settling", "action": "deny", "value": 1024,
            "reason": "predicted gain +10.0%; last tick wrote 4 → 1024 for +216.7%: a window "
                      "after a write needs as much to undo it"} in d.verdicts
    assert a.tick()[0].written == "64"  # one tick later it may


def test_a_guess_is_undone_on_the_next_tick_by_more_than_it_was_made_for(
        root: Root, state: Path) -> None:
    # Seen in the benchmark: 4 → 64 guessed at +21 % from a window with no sampled access,
    # then 4 over 64 by +30 % on trace evidence: a fixed +30 % threshold held it (3.8 s).
    a = settling_agent(root, state)
    a.model.scores = {4: 0.50, 64: 0.55, 1024: 0.62}
    assert a.tick()[0].written == "1024"  # +24 %
    a.model.scores = {4: 0.50, 64: 0.80, 1024: 0.61}
    assert a.tick()[0].written == "64"  # +31 %


def test_a_step_further_the_same_way_or_a_watched_change_is_not_held(
        root: Root, state: Path) -> None:
    a = settling_agent(root, state)
    a.model.scores = {4: 0.30, 64: 0.99, 1024: 0.10}
    assert a.tick()[0].written == "64"
    a.model.scores = {4: 0.30, 64: 0.40, 1024: 0.99}
    assert a.tick()[0].written == "1024"  # 4 → 64 → 1024: the same way
    a.model.scores = {4: 0.99, 64: 0.40, 1024: 0.30}
    a.trigger = "watch: a: reads/s 100 -> 9000"  # the workload changed after the write
    assert a.tick()[0].written == "4"


def test_a_change_measured_as_a_gain_is_not_undone_for_a_smaller_predicted_one(
        root: Root, state: Path) -> None:
    # -v9, four streams: 4096 → 256 measured 1.16x, and on the same tick 256 → 4096 for a
    # predicted +11 % (then 4096 → 512 on the next): the knob flapped the whole phase.
    drv = FakeDriver(root, ["a"])
    policies = [AllowedRange(4, 4096), RegressionGuard(), MeasuredGain(), Cooldown(0.0),
                MinGain(0.05)]
    a = Agent(drv, StubModel({4: 0.95, 64: 0.50, 1024: 0.60}), policies, drv.discover(),
              Journal(state, root), state / "audit.jsonl", judge=Judge(GuardConfig(window_ticks=2)),
              recent=RecentScores(ticks=1))  # each tick's own scores: the policy is tested
    drv.rewards = [100, 100, 5, 150, 170, 160, 160]
    assert a.tick()[0].written is None  # a baseline at 4
    a.model.scores = {4: 0.30, 64: 0.50, 1024: 0.95}
    assert a.tick()[0].written == "1024"
    for _ in range(2):  # settle tick, first measured tick
        assert a.tick()[0].written is None
    a.model.scores = {4: 0.66, 64: 0.50, 1024: 0.60}  # back to 4 for +10 %
    d = a.tick()[0]  # the verdict: 1024 read 1.60x what 4 did
    assert outcomes(state) == [("kept", "reward 1.60x of before")]
    assert (d.best, d.written) == (4, None)
    assert {"policy": "measured", "action": "deny", "value": 1024,
            "reason": "predicted gain +10.0% back toward 4; 4 → 1024 measured 1.60x at this "
                      "workload"} in d.verdicts
    a.model.scores = {4: 0.99, 64: 0.50, 1024: 0.30}  # +230 %: more than was measured
    assert a.tick()[0].written == "4"


@pytest.mark.parametrize(("min_before", "mode"), [(1, "learning"), (2, "collaboration")])
def test_over_promising_demotes_only_on_a_baseline_a_revert_could_stand_on(
        root: Root, state: Path, min_before: int, mode: str) -> None:
    # A phase's first write has one tick of the new workload at the old value behind it
    # (mmap-seq, 4 -> 1024 at 0.3 s, measured 0.89x against 8.98x predicted, -v34).
    drv = FakeDriver(root, ["a"])
    a = Agent(drv, StubModel(PREFERS_1024), [AllowedRange(4, 4096), RegressionGuard(),
                                             Cooldown(0.0), MinGain(0.05)],
              drv.discover(), Journal(state, root), state / "audit.jsonl",
              mode_cfg=ModeConfig(start="collaboration", max_prediction_error=4.0),
              judge=Judge(GuardConfig(window_ticks=2, settle_ticks=1, min_before=min_before)))
    a.driver.rewards = [100, 90, 75, 75]  # one baseline tick; settle; 0.75x (predicted 3.17x)
    assert a.tick()[0].written == "1024"
    for _ in range(3):
        a.tick()
    out = next(x for x in audit_lines(state) if x["kind"] == "outcome")
    assert (out["verdict"], out["ratio"], out["before_ticks"]) == ("kept", 0.75, 1)
    assert a.modes["a"].mode == mode
