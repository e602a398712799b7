"""The agent's tick: observe → score → policies → journal → apply → audit."""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from mltune import config as configmod
from mltune.cli import _policies
from mltune.driver import Availability, Change, Observation, Target
from mltune.drivers.readahead import ReadaheadDriver
from mltune.errors import DeviceGone, ValueRejected, WriteMismatch
from mltune.journal import Journal
from mltune.loop import Agent, Decision
from mltune.policies.base import Proposal, Verdict
from mltune.policies.limits import AllowedRange, Cooldown, MaxChangesPerHour, MinGain
from mltune.sysfs import Root

AUDIT_KEYS = {"kind", "id", "time", "driver", "target", "mode", "current", "chosen", "written",
              "scores", "verdicts", "features", "tick_ms"}


class FakeDriver:
    """A driver over plain files ``sys/fake/<name>/knob`` under a root: just the contract."""

    name = "fake"
    knob = "knob"
    features = ("f", "g")

    def __init__(self, root: Root, names: Sequence[str], journal_path: Path | None = None,
                 fail_apply: Mapping[str, Exception] | None = None) -> None:
        self.root = root
        self.names = list(names)
        self.journal_path = journal_path
        self.fail_apply = dict(fail_apply or {})
        self.journal_at_apply: list[list[dict]] = []
        self.applied: list[Change] = []
        self.closed = False
        self.rewards: list[float] = []  # reward per active observation, in order

    def availability(self) -> Availability:
        return Availability(True, "", tuple(self.names))

    def discover(self) -> list[Target]:
        return [Target("fake", n, f"sys/fake/{n}/knob", f"sys/fake/{n}") for n in self.names]

    def observe(self, targets: Sequence[Target]) -> dict[str, Observation]:
        out = {}
        for t in targets:
            self.current(t)  # a real driver reads the knob while observing
            out[t.name] = Observation(t.name, 1.7e9, {"f": 0.5, "g": math.nan}, "proc")
        return out

    def current(self, target: Target) -> int:
        return int(self.root.read(target.path, owner=target.owner))

    def candidates(self, target: Target) -> tuple[int, ...]:
        return (4, 64, 1024)

    def reward(self, o: Observation) -> float | None:
        return self.rewards.pop(0) if self.rewards else None

    def signature(self, o: Observation) -> tuple[float, ...] | None:
        return (0.5,)

    def plan(self, target: Target, value: int) -> Change:
        return Change("fake", target.name, target.path, str(self.current(target)), str(value),
                      str(value))

    def apply(self, change: Change) -> str:
        if change.target in self.fail_apply:
            raise self.fail_apply[change.target]
        if self.journal_path is not None:
            self.journal_at_apply.append(json.loads(self.journal_path.read_text())["entries"])
        self.applied.append(change)
        self.root.write(change.path, change.new, owner=f"sys/fake/{change.target}")
        return self.root.read(change.path)

    def close(self) -> None:
        self.closed = True


class StubModel:
    """Fixed scores per target value; records what it was asked."""

    def __init__(self, scores: Mapping[int, float]) -> None:
        self.scores = dict(scores)
        self.calls: list[Mapping[str, float]] = []

    def score(self, features: Mapping[str, float], values: Sequence[int]) -> dict[int, float]:
        self.calls.append(features)
        return {v: self.scores[v] for v in values}

    def contributions(self, features: Mapping[str, float], value: int) -> dict[str, float]:
        return dict.fromkeys(features, 0.0)


PREFERS_1024 = {4: 0.30, 64: 0.60, 1024: 0.95}
NOISE = {4: 0.90, 64: 0.92, 1024: 0.93}


@pytest.fixture
def root(tmp_path: Path) -> Root:
    for name in ("a", "b"):
        d = tmp_path / "root" / "sys" / "fake" / name
        d.mkdir(parents=True)
        (d / "knob").write_text("4\n")
    (tmp_path / "root" / "proc").mkdir()
    return Root(tmp_path / "root")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


def agent(root: Root, state: Path, model: StubModel | None, dry_run: bool = False,
          names: Sequence[str] = ("a", "b"), min_gain: float = 0.05,
          fail_apply: Mapping[str, Exception] | None = None) -> Agent:
    journal = None if dry_run else Journal(state, root)
    drv = FakeDriver(root, names, None if dry_run else state / "journal.json", fail_apply)
    policies = [AllowedRange(4, 4096), Cooldown(0.0), MinGain(min_gain)]
    return Agent(drv, model, policies, drv.discover(), journal, state / "audit.jsonl",
                 "" if model else "model file /x/readahead.txt: No such file or directory")


def audit_lines(state: Path) -> list[dict]:
    def no_nan(token: str) -> None:
        raise AssertionError(f"{token} in audit log: not valid JSON")

    text = (state / "audit.jsonl").read_text()
    return [json.loads(line, parse_constant=no_nan) for line in text.splitlines()]


def test_best_value_is_applied_when_predicted_gain_reaches_min_gain(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    decisions = a.tick()
    assert [(d.target, d.current, d.chosen, d.written) for d in decisions] == [
        ("a", 4, 1024, "1024"), ("b", 4, 1024, "1024")]
    assert root.read("sys/fake/a/knob") == "1024"


def test_original_is_journaled_before_the_write(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.tick()
    # What the driver saw on disk at the moment of its write.
    [seen] = a.driver.journal_at_apply
    assert [{k: v for k, v in e.items() if k != "time"} for e in seen] == [{
        "driver": "fake", "target": "a", "path": "sys/fake/a/knob", "owner": "sys/fake/a",
        "original": "4"}]


def test_gain_below_min_gain_writes_nothing(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(NOISE))
    d = a.tick()[0]
    assert (d.best, d.chosen, d.written) == (1024, 4, None)
    assert d.verdicts[-1]["action"] == "deny"
    assert root.read("sys/fake/a/knob") == "4"
    assert not (state / "journal.json").exists()


def test_audit_line_per_decision_with_the_documented_keys(root: Root, state: Path) -> None:
    agent(root, state, StubModel(PREFERS_1024)).tick()
    lines = [x for x in audit_lines(state) if x["kind"] == "decision"]
    assert [x["target"] for x in lines] == ["a", "b"]
    x = lines[0]
    assert set(x) >= AUDIT_KEYS
    assert x["mode"] == "collaboration"
    # The fake driver measures no reward: each write's outcome says it cannot be judged.
    outcomes = [x for x in audit_lines(state) if x["kind"] == "outcome"]
    assert [(o["target"], o["decision"], o["verdict"], o["reason"]) for o in outcomes] == [
        (t, d["id"], "inconclusive", "no reward measured at the old value")
        for t, d in zip("ab", lines, strict=True)]
    assert (x["driver"], x["current"], x["chosen"], x["written"]) == ("fake", 4, 1024, "1024")
    assert x["scores"] == {"4": 0.3, "64": 0.6, "1024": 0.95}
    assert [v["policy"] for v in x["verdicts"]] == ["range", "cooldown", "min_gain"]
    assert x["features"] == {"f": 0.5, "g": None}  # NaN is not JSON: written as null
    assert x["tick_ms"] >= 0 and x["dry_run"] is False


def test_keeping_the_value_asks_only_the_policies_that_judge_a_keep(
        root: Root, state: Path) -> None:
    # Most ticks propose the current value: cooldown and min_gain have nothing to judge.
    d = agent(root, state, StubModel({4: 0.9, 64: 0.5, 1024: 0.1}), names=("a",)).tick()[0]
    assert (d.best, d.chosen, d.written) == (4, 4, None)
    assert [(v["policy"], v["action"]) for v in d.verdicts] == [("range", "allow")]
    # A value kept outside the range is clamped into it, and the rest then judge that move
    # (here min_gain refuses it: 512 is judged by 64's score, a predicted loss).
    root.write("sys/fake/a/knob", "1024")
    drv = FakeDriver(root, ["a"])
    a = Agent(drv, StubModel({4: 0.1, 64: 0.5, 1024: 0.9}),
              [AllowedRange(4, 512), Cooldown(0.0), MinGain(0.0)], drv.discover(),
              Journal(state, root), state / "audit.jsonl")
    d = a.tick()[0]
    assert (d.best, d.chosen, d.written) == (1024, 1024, None)
    assert [(v["policy"], v["action"], v["value"]) for v in d.verdicts] == [
        ("range", "clamp", 512), ("cooldown", "allow", 512), ("min_gain", "deny", 1024)]


def test_dry_run_writes_no_knob_and_no_journal(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), dry_run=True)
    decisions = a.tick()
    assert [(d.chosen, d.written, d.dry_run) for d in decisions] == [(1024, None, True)] * 2
    assert a.driver.applied == []
    assert root.read("sys/fake/a/knob") == root.read("sys/fake/b/knob") == "4"
    assert sorted(p.name for p in state.iterdir()) == ["audit.jsonl", "state.json"]
    assert a.shutdown() == []


def test_dry_run_without_audit_log_creates_no_file(root: Root, state: Path) -> None:
    a = replace(agent(root, state, StubModel(PREFERS_1024), dry_run=True), audit_path=None)
    a.tick()
    assert list(state.iterdir()) == []


def test_device_gone_at_apply_drops_that_target_and_keeps_the_others(
        root: Root, state: Path) -> None:
    gone = DeviceGone("sys/fake/a: device gone")
    a = agent(root, state, StubModel(PREFERS_1024), fail_apply={"a": gone})
    decisions = a.tick()
    assert [d.target for d in decisions] == ["b"]
    assert [t.name for t in a.targets] == ["b"]
    assert root.read("sys/fake/b/knob") == "1024"


def test_device_removed_before_observe_is_dropped(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    shutil.rmtree(root.path("sys/fake/a"))
    assert [d.target for d in a.tick()] == ["b"]
    assert [t.name for t in a.targets] == ["b"]


def test_a_refused_write_is_logged_in_the_decision_and_the_other_targets_go_on(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024),
              fail_apply={"a": ValueRejected("sys/fake/a/knob: value rejected")})
    decisions = a.tick()
    assert [(d.target, d.written, d.note) for d in decisions] == [
        ("a", None, "write failed (see log)"), ("b", "1024", "")]
    assert [t.name for t in a.targets] == ["a", "b"]


def test_without_a_model_nothing_is_written_and_the_note_says_why(
        root: Root, state: Path) -> None:
    a = agent(root, state, None)
    decisions = a.tick()
    assert [(d.chosen, d.written, d.best) for d in decisions] == [(4, None, None)] * 2
    assert decisions[0].mode == "emergency"
    assert decisions[0].note == ("emergency, hands off: no valid model: "
                                 "model file /x/readahead.txt: No such file or directory")
    assert root.read("sys/fake/a/knob") == "4"
    assert not (state / "journal.json").exists()
    assert audit_lines(state)[0]["note"].startswith("emergency, hands off: no valid model")


def test_shutdown_restores_originals_and_closes_the_driver(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    a.tick()
    notes = a.shutdown()
    assert notes == ["restored fake/b /sys/fake/b/knob = 4", "restored fake/a /sys/fake/a/knob = 4"]
    assert root.read("sys/fake/a/knob") == root.read("sys/fake/b/knob") == "4"
    assert a.driver.closed


def test_the_knob_read_while_observing_is_not_read_again(root: Root, state: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    drv = a.driver
    observe = drv.observe
    reads: list[str] = []
    monkeypatch.setattr(drv, "current", lambda t: reads.append(t.name) or 4)
    monkeypatch.setattr(drv, "observe", lambda targets: {
        n: replace(o, current=4) for n, o in observe(targets).items()})
    (d,) = a.tick()
    assert d.current == 4 and d.written == "1024"
    # One read while observing, one by plan() before the write: none by the loop between.
    assert reads == ["a", "a"]


def test_second_tick_keeps_the_value_it_set(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.tick()
    d = a.tick()[0]
    assert (d.current, d.chosen, d.written) == (1024, 1024, None)
    assert len(a.driver.applied) == 1


def test_run_once_ticks_once(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    a.run(interval=3600, stop=threading.Event(), once=True)
    assert a.summary()["ticks"] == 1


class Watched:
    """A driver's change check: no change for ``quiet`` looks, then a change."""

    def __init__(self, quiet: int) -> None:
        self.quiet = quiet
        self.looks: list[bool] = []  # reset flag of each look

    def __call__(self, targets: Sequence[Target], reset: bool = False,
                 wrote: Sequence[str] = ()) -> str | None:
        self.looks.append(reset)
        return None if reset or len(self.looks) <= self.quiet else "a: reads/s 10 -> 9000"


def test_a_changed_workload_gets_its_tick_before_the_interval(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.watch_s = 0.01
    a.driver.changed = look = Watched(quiet=3)  # type: ignore[attr-defined]
    stop = threading.Event()
    ticked: list[str] = []

    def tick() -> list:
        ticked.append(a.trigger)
        if len(ticked) == 2:
            stop.set()
        return []

    a.tick = tick  # type: ignore[method-assign]
    t0 = time.monotonic()
    a.run(interval=3600, stop=stop)  # would wait an hour without the change
    assert time.monotonic() - t0 < 60
    assert ticked == ["", "watch: a: reads/s 10 -> 9000"]
    assert look.looks[:4] == [True, False, False, False]  # reset after the tick, then looks
    assert a.summary()["early_ticks"] == 1


def test_after_an_early_tick_the_next_one_is_on_schedule(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.watch_s = 0.01
    a.driver.changed = look = Watched(quiet=0)  # type: ignore[attr-defined]
    stop = threading.Event()
    ticked: list[tuple[float, str]] = []

    def tick() -> list:
        ticked.append((time.monotonic(), a.trigger))
        if len(ticked) == 3:
            stop.set()
        return []

    a.tick = tick  # type: ignore[method-assign]
    a.run(interval=0.3, stop=stop)
    assert [t for _, t in ticked] == ["", "watch: a: reads/s 10 -> 9000", ""]
    assert ticked[2][0] - ticked[1][0] >= 0.29  # no look between: a plain interval
    assert look.looks == [True, False, True]  # after tick 1; the trigger; after tick 3


def _timed_run(a: Agent, wrote: Sequence[set[str]], interval: float = 0.6,
               saw: Sequence[str] = (), blind: Sequence[bool] = (),
               soon: Sequence[float] = ()) -> list[tuple[float, str]]:
    """Run ``a`` for ``len(wrote)`` ticks; tick i reports writes to ``wrote[i]`` and asks
    for an early tick for the reason ``saw[i]``, ``soon[i]`` seconds later (as Agent._saw
    does). Returns each tick's (time, trigger)."""
    stop = threading.Event()
    ticked: list[tuple[float, str]] = []

    def tick() -> list:
        i = len(ticked)
        ticked.append((time.monotonic(), a.trigger))
        if len(ticked) == len(wrote):
            stop.set()
        a.retick = saw[i] if i < len(saw) else ""
        a.retick_always = blind[i] if i < len(blind) else False
        a.retick_s = soon[i] if i < len(soon) else 0.0
        return [Decision(0.0, "", "readahead", name, "", "", 4, None, 4, "4", {}, [], {}, 0.0)
                for name in wrote[i]]

    a.tick = tick  # type: ignore[method-assign]
    a.run(interval=interval, stop=stop)
    return ticked


def test_a_write_brings_the_next_tick_forward_even_after_an_early_one(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.watch_s = 0.05
    a.driver.changed = Watched(quiet=1)  # type: ignore[attr-defined]
    ticked = _timed_run(a, [set(), {"a"}, set(), set()])
    # on schedule; early (watch), writes; early again for the write; then on schedule
    assert [t for _, t in ticked] == ["", "watch: a: reads/s 10 -> 9000",
                                      "tick: a: wrote at the last tick", ""]
    assert ticked[2][0] - ticked[1][0] < 0.3
    assert ticked[3][0] - ticked[2][0] >= 0.59


def test_after_an_early_tick_only_a_write_brings_the_next_one_forward(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.watch_s = 0.05
    moved = "a: access pattern changed at the last tick"
    # no change check: ticks on schedule, or brought forward by the tick before
    ticked = _timed_run(a, [set(), set(), {"a"}, set()], saw=[moved, moved, moved])
    assert [t for _, t in ticked] == ["", "tick: " + moved, "", "tick: " + moved]
    assert ticked[2][0] - ticked[1][0] >= 0.59  # the early tick's own retick is not taken
    assert ticked[3][0] - ticked[2][0] < 0.3  # the write's is (its reason: the pattern)


def test_after_an_early_tick_that_caught_no_access_the_next_one_comes_soon(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.watch_s = 0.05
    a.driver.changed = Watched(quiet=1)  # type: ignore[attr-defined]
    blind = "a: the last tick's trace caught no access"
    ticked = _timed_run(a, [set(), set(), set()], saw=["", blind], blind=[False, True])
    assert [t for _, t in ticked] == ["", "watch: a: reads/s 10 -> 9000", "tick: " + blind]
    assert ticked[2][0] - ticked[1][0] < 0.3


def test_a_window_that_caught_no_access_brings_the_next_tick_one_look_later(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.watch_s = 0.2
    blind = "a: the last tick's trace caught no access"
    moved = "a: access pattern changed at the last tick"
    ticked = _timed_run(a, [set(), set(), set()], interval=1.2, saw=[blind, moved],
                        blind=[True, True], soon=[a.watch_s])
    assert [t for _, t in ticked] == ["", "tick: " + blind, "tick: " + moved]
    assert ticked[1][0] - ticked[0][0] < 0.35  # watch_s, not 2 x watch_s
    assert ticked[2][0] - ticked[1][0] >= 0.4  # other reticks: 2 x watch_s


def test_saw_asks_for_the_soon_retick_only_for_a_window_that_caught_no_access(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a._saw("a", (1.0, 1.0, 0.0, 0.5))
    assert (a.retick, a.retick_s) == ("", 0.0)
    a._saw("a", None)
    assert (a.retick, a.retick_s) == ("a: the last tick's trace caught no access", a.watch_s)
    a.retick, a.retick_s = "", 0.0
    a._saw("a", (0.0, 0.0, 1.0, 0.0))
    assert (a.retick, a.retick_s) == ("a: access pattern changed at the last tick", 0.0)


def test_saw_notes_when_the_workload_began_and_the_policies_see_it(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    t0 = time.monotonic()
    a._saw("a", None)  # nothing seen yet: no workload to date
    assert "a" not in a.moved_at
    a._saw("a", (1.0, 1.0, 0.0, 0.5))  # the first pattern seen
    first = a.moved_at["a"]
    assert first >= t0
    for sig in [(math.nan,) * 4, (1.0, 1.0, 0.1, 0.5), None]:  # unknown, or the same
        a._saw("a", sig)
        assert a.moved_at["a"] == first
    a.moved_at["a"] = first - 10.0  # as if long ago
    a._saw("a", (0.0, 0.0, 1.0, 0.0))  # moved
    assert a.moved_at["a"] >= first
    seen: list[float | None] = []

    class Recorder:
        name = "recorder"
        judges_keep = True

        def check(self, p: Proposal) -> Verdict:
            seen.append(p.workload_since)
            return Verdict(self.name, "allow", p.value, "")

    a.policies = [Recorder()]
    a.tick()
    assert seen == [a.moved_at["a"]]


def test_the_trigger_is_in_the_audit_line(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.trigger = "watch: a: reads/s 10 -> 9000"
    a.tick()
    assert audit_lines(state)[-1]["trigger"] == "watch: a: reads/s 10 -> 9000"


def test_without_watch_the_loop_just_waits(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.watch_s = 0
    a.driver.changed = look = Watched(quiet=0)  # type: ignore[attr-defined]
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    a.run(interval=0.05, stop=stop)
    assert look.looks == [] and a.early_ticks == 0 and a.ticks >= 2


def test_a_tick_that_saw_the_pattern_move_brings_the_next_one_forward(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.watch_s = 0.01
    a.seen["a"] = ((1.0, 1.0, 0.0, 0.0), False)  # the last tick saw a stream
    sigs = [(math.nan, math.nan, 1.0, 0.0), (0.1, 0.1, 1.0, 0.0)]
    a.driver.signature = lambda o: sigs.pop(0)  # type: ignore[method-assign]
    stop = threading.Event()
    triggers: list[str] = []
    tick = a.tick

    def counted() -> list:
        triggers.append(a.trigger)
        if len(triggers) == 2:
            stop.set()
        return tick()

    a.tick = counted  # type: ignore[method-assign]
    t0 = time.monotonic()
    a.run(interval=3600, stop=stop)  # would wait an hour without the early tick
    assert time.monotonic() - t0 < 60
    # This tick saw faults (only that part known): the next one is brought forward. That
    # one agrees with it where both are known: no further early tick is asked for.
    assert triggers == ["", "tick: a: access pattern changed at the last tick"]
    assert a.early_ticks == 1 and a.retick == ""


def test_a_window_that_caught_nothing_after_a_pattern_asks_for_an_early_tick(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    sigs = [(1.0, 1.0, 0.0, 0.0), None, (math.nan, math.nan, 1.0, 0.0), None, None]
    a.driver.signature = lambda o: sigs.pop(0)  # type: ignore[method-assign]
    asked, blind = [], []
    for _ in range(5):
        a.tick()
        asked.append(a.retick)
        blind.append(a.retick_always)
        a.retick, a.retick_always = "", False
    # The third: faults, their stream statistics unknown (too few per file): another
    # look soon even after an early tick.
    assert blind == [False, True, True, True, False]
    assert asked == ["", "a: the last tick's trace caught no access",
                     # compared with the stream, the last pattern known: faults now
                     "a: access pattern changed at the last tick",
                     "a: the last tick's trace caught no access", ""]


def test_an_unmoved_or_unknown_pattern_keeps_the_schedule(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    for sig in [None, (0.5, 0.5, 0.0, 0.0), (0.6, 0.5, 0.1, 0.0), (math.nan,) * 4]:
        a.driver.signature = lambda o, s=sig: s  # type: ignore[method-assign]
        a.steps.clear()  # the first tick's write asks for its own retick (tested below)
        a.tick()
        assert a.retick == ""


def test_the_tick_after_a_write_that_keeps_asks_for_another_soon(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    assert a.tick()[0].written == "1024"
    assert (a.retick, a.retick_always) == ("", False)  # a write's retick: _wait's, by `wrote`
    assert a.tick()[0].written is None  # straddles the write: its counters are half old
    assert (a.retick, a.retick_always) == ("a: the last tick straddled a write", True)
    a.retick, a.retick_always = "", False
    a.tick()  # the one after: on schedule again
    assert (a.retick, a.retick_always) == ("", False)


def test_a_window_that_caught_no_access_writes_nothing(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    observe = a.driver.observe

    def blind(targets: Sequence[Target]) -> dict[str, Observation]:
        return {n: replace(o, blind=True) for n, o in observe(targets).items()}

    a.driver.observe = blind  # type: ignore[method-assign]
    d = a.tick()[0]
    assert (d.best, d.chosen, d.written) == (1024, 4, None)
    assert d.note == "the trace window caught no access: kept"
    assert root.read("sys/fake/a/knob") == "4"
    a.driver.observe = observe  # type: ignore[method-assign]
    assert a.tick()[0].written == "1024"


def test_one_odd_tick_at_a_steady_workload_writes_nothing(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel({4: 0.90, 64: 0.60, 1024: 0.50}), names=("a",))
    for _ in range(3):
        assert a.tick()[0].written is None  # 4 is best
    a.model.scores = {4: 0.60, 64: 0.60, 1024: 0.70}  # one tick puts 1024 first by 17 %
    d = a.tick()[0]
    assert (d.best, d.written, d.averaged) == (4, None, 3)
    assert d.scores == {"4": 0.8, "64": 0.6, "1024": 0.5667}
    assert audit_lines(state)[-1]["averaged"] == 3


def test_a_tick_that_saw_no_access_pattern_is_not_averaged_with_ones_that_did(
        root: Root, state: Path) -> None:
    # -v9: 0.2 s into mmap random reads the trace window caught nothing; the /proc route
    # said 2560 → 16, which a mean with the stream's ticks would have held.
    a = agent(root, state, StubModel({4: 0.90, 64: 0.60, 1024: 0.50}), names=("a",))
    for _ in range(3):
        a.tick()
    a.driver.signature = lambda o: None  # type: ignore[method-assign]
    a.model.scores = {4: 0.60, 64: 0.60, 1024: 0.70}
    d = a.tick()[0]
    assert (d.best, d.written, d.averaged) == (1024, "1024", 1)


def test_run_stops_when_no_target_is_left(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    shutil.rmtree(root.path("sys/fake/a"))
    a.run(interval=3600, stop=threading.Event())  # would wait an hour if it did not stop
    assert a.targets == []


def test_device_removed_mid_run_is_dropped(fake_root: Root) -> None:
    # The real driver on the 6.18 tree: loop0 is detached between two ticks.
    drv = ReadaheadDriver(fake_root, devices=["loop0", "vda"], trace=False)
    a = Agent(drv, StubModel(dict.fromkeys(drv.candidates(drv.discover()[0]), 0.5)), [],
              drv.discover(), None, None)
    assert [d.target for d in a.tick()] == ["loop0", "vda"]
    shutil.rmtree(fake_root.path("sys/block/loop0"))
    assert [d.target for d in a.tick()] == ["vda"]
    assert [t.name for t in a.targets] == ["vda"]


# -- a knob changed outside mltune: freeze, leave it alone, resume on request ------------


def test_outside_write_between_ticks_freezes_the_target_within_one_tick(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    a.tick()
    root.write("sys/fake/a/knob", "64")  # an admin's `echo 64 > read_ahead_kb`
    d_a, d_b = a.tick()
    assert set(a.frozen) == {"a"}
    assert "knob is 64, mltune last wrote 1024" in a.frozen["a"]
    # The model still wants 1024 for a, but the other party's value stands.
    assert (d_a.current, d_a.chosen, d_a.written) == (64, 1024, None)
    assert d_a.note.startswith("frozen")
    assert (d_b.current, d_b.written, d_b.note) == (1024, None, "")
    assert audit_lines(state)[-2]["note"].startswith("frozen")
    assert root.read("sys/fake/a/knob") == "64"


def test_frozen_target_is_never_written_again(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    a.tick()
    root.write("sys/fake/a/knob", "64")
    for _ in range(3):
        d = a.tick()[0]
        assert (d.written, d.note.startswith("frozen")) == (None, True)
    assert [(c.target, c.new) for c in a.driver.applied] == [("a", "1024"), ("b", "1024")]
    assert root.read("sys/fake/a/knob") == "64"


def test_shutdown_leaves_a_frozen_knob_to_whoever_set_it_and_restores_the_others(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    a.tick()
    root.write("sys/fake/a/knob", "64")
    a.tick()
    # The journal on disk no longer holds a's original: a crash now would not undo it either.
    on_disk = json.loads((state / "journal.json").read_text())["entries"]
    assert [e["target"] for e in on_disk] == ["b"]
    assert a.shutdown() == ["restored fake/b /sys/fake/b/knob = 4"]
    assert root.read("sys/fake/a/knob") == "64"
    assert root.read("sys/fake/b/knob") == "4"


def test_resume_file_lifts_the_freeze_and_the_outside_value_becomes_the_original(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.tick()
    root.write("sys/fake/a/knob", "64")
    a.tick()
    (state / "resume-a").touch()  # what `mltune resume a` leaves
    a.run(interval=3600, stop=threading.Event(), once=True)
    assert a.frozen == {}
    assert not (state / "resume-a").exists()
    d = audit_lines(state)[-1]
    assert (d["current"], d["written"], d["note"]) == (64, "1024", "")
    assert root.read("sys/fake/a/knob") == "1024"
    assert a.shutdown() == ["restored fake/a /sys/fake/a/knob = 64"]


def test_resume_of_a_target_that_is_not_frozen_changes_nothing(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.tick()
    assert a.resume("a") is False
    # Still watching: an outside write after a stray resume is caught.
    root.write("sys/fake/a/knob", "64")
    a.tick()
    assert set(a.frozen) == {"a"}


def test_stale_resume_request_does_not_lift_a_later_freeze(root: Root, state: Path) -> None:
    # `mltune resume a` run while a was not frozen must not pre-approve a future takeover.
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    (state / "resume-a").touch()
    a.run(interval=3600, stop=threading.Event(), once=True)
    assert not (state / "resume-a").exists()
    root.write("sys/fake/a/knob", "64")
    a.run(interval=3600, stop=threading.Event(), once=True)
    a.run(interval=3600, stop=threading.Event(), once=True)
    assert set(a.frozen) == {"a"}
    assert root.read("sys/fake/a/knob") == "64"


def test_dry_run_never_freezes(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), dry_run=True)
    a.tick()
    root.write("sys/fake/a/knob", "64")
    decisions = a.tick()
    assert a.frozen == {}
    assert [(d.written, d.note) for d in decisions] == [(None, "")] * 2
    assert a.driver.applied == []


class NormalisingDriver(FakeDriver):
    """A kernel that keeps some values as others (``read_ahead_kb`` rounds to pages, and
    could be anything): writes, reads back and raises WriteMismatch, as the readahead driver
    does."""

    def __init__(self, root: Root, names: Sequence[str], shows: Mapping[str, str]) -> None:
        super().__init__(root, names)
        self.shows = dict(shows)

    def apply(self, change: Change) -> str:
        self.applied.append(change)
        shown = self.shows.get(change.new, change.new)
        self.root.write(change.path, shown)
        if shown != change.expect:
            raise WriteMismatch(f"/{change.path}: wrote {change.new}, kernel shows {shown}")
        return shown


def test_write_the_kernel_shows_differently_still_counts_for_the_cooldown(
        root: Root, state: Path) -> None:
    # Found by tests/test_fuzz_kernel_files.py: the write was only counted after a matching
    # read-back, so such a kernel got a write every tick whatever the cooldown.
    drv = NormalisingDriver(root, ["a"], shows={"1024": "8"})
    a = Agent(drv, StubModel(PREFERS_1024), [AllowedRange(4, 4096), Cooldown(3600),
                                             MinGain(0.05)],
              drv.discover(), Journal(state, root), state / "audit.jsonl")
    for _ in range(3):
        a.tick()
    assert [c.new for c in drv.applied] == ["1024"]
    assert audit_lines(state)[-1]["verdicts"][1]["action"] == "deny"
    assert root.read("sys/fake/a/knob") == "8"


def test_write_the_kernel_shows_differently_is_not_taken_for_an_outside_change(
        root: Root, state: Path) -> None:
    # Taken for one, the target froze and its journaled original was dropped: mltune's own
    # write stayed after exit.
    drv = NormalisingDriver(root, ["a"], shows={"64": "60"})
    model = StubModel(PREFERS_1024)
    a = Agent(drv, model, [AllowedRange(4, 4096), Cooldown(0.0), MinGain(0.05)],
              drv.discover(), Journal(state, root), state / "audit.jsonl")
    a.tick()
    model.scores = {4: 0.30, 64: 0.95, 1024: 0.60}
    a.tick()  # writes 64, the kernel shows 60
    a.tick()
    assert a.frozen == {}
    a.shutdown()
    assert root.read("sys/fake/a/knob") == "4"


def test_unwritable_state_dir_means_no_write_and_the_agent_keeps_running(
        root: Root, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A full or read-only state dir: the original cannot be journaled, so it is not written.
    import mltune.journal as journal_mod

    def full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_mod, "write_json", full)
    a = agent(root, state, StubModel(PREFERS_1024))
    assert a.tick() == []
    assert root.read("sys/fake/a/knob") == "4"
    assert a.journal is not None and a.journal.entries == []


def test_frozen_targets_are_in_the_state_file_for_status(root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    a.tick()
    root.write("sys/fake/a/knob", "64")  # an admin
    a.tick()
    saved = json.loads((state / "state.json").read_text())
    assert list(saved["frozen"]) == ["a"]
    a.resume("a")
    assert json.loads((state / "state.json").read_text())["frozen"] == {}


# -- the configured policy chain: step, changes per hour, pressure ------------------------


class PressuredDriver(FakeDriver):
    """The fake driver, observing PSI "full avg10" pressure as the readahead driver does."""

    def __init__(self, root: Root, names: Sequence[str], pressure: Mapping[str, float],
                 journal_path: Path | None = None) -> None:
        super().__init__(root, names, journal_path)
        self.pressure = dict(pressure)

    def observe(self, targets: Sequence[Target]) -> dict[str, Observation]:
        return {n: Observation(o.target, o.time, {**o.features, **self.pressure}, o.source)
                for n, o in super().observe(targets).items()}


def configured_agent(root: Root, state: Path, drv: FakeDriver, model: StubModel,
                     config: str = "") -> Agent:
    cfg_file = state.parent / "mltune.yaml"
    cfg_file.write_text(config)
    return Agent(drv, model, _policies(configmod.load(cfg_file), "readahead"), drv.discover(),
                 Journal(state, root), state / "audit.jsonl")


def test_configured_chain_runs_in_the_documented_order(root: Root, state: Path) -> None:
    drv = FakeDriver(root, ["a"], state / "journal.json")
    a = configured_agent(root, state, drv, StubModel(PREFERS_1024))
    [d] = a.tick()
    assert [v["policy"] for v in d.verdicts] == [
        "range", "max_step", "mode", "regression", "settling", "measured", "cooldown",
        "max_changes_per_hour", "pressure", "min_gain"]
    # Default step factor 1024: 4 → 1024 in one change; pressure unknown does not block.
    assert (d.chosen, d.written) == (1024, "1024")
    assert d.verdicts[8]["reason"] == "memory full avg10 unknown, io full avg10 unknown"


def test_memory_pressure_above_threshold_keeps_the_current_value(
        root: Root, state: Path) -> None:
    drv = PressuredDriver(root, ["a"], {"psi_mem_full": 72.5, "psi_io_full": 2.79},
                          state / "journal.json")
    a = configured_agent(root, state, drv, StubModel(PREFERS_1024))
    [d] = a.tick()
    assert (d.best, d.chosen, d.written) == (1024, 4, None)
    assert d.verdicts[-1] == {"policy": "pressure", "action": "deny", "value": 4,
                              "reason": "hands off: memory full avg10 72.5% >= 60%"}
    assert drv.applied == [] and root.read("sys/fake/a/knob") == "4"
    assert d.features["psi_mem_full"] == 72.5  # what the guard saw is in the audit line


def test_io_pressure_does_not_block_readahead_by_default(root: Root, state: Path) -> None:
    # A wrong readahead is what causes I/O stalls: the default I/O guard (100 %) stays open.
    drv = PressuredDriver(root, ["a"], {"psi_mem_full": 2.79, "psi_io_full": 72.5},
                          state / "journal.json")
    a = configured_agent(root, state, drv, StubModel(PREFERS_1024))
    [d] = a.tick()
    assert (d.best, d.chosen, d.written) == (1024, 1024, "1024")


def test_pressure_below_a_configured_threshold_lets_the_change_through(
        root: Root, state: Path) -> None:
    drv = PressuredDriver(root, ["a"], {"psi_mem_full": 2.79, "psi_io_full": 72.5},
                          state / "journal.json")
    a = configured_agent(root, state, drv, StubModel(PREFERS_1024),
                         "drivers:\n  readahead:\n    policies:\n"
                         "      pressure: {io_full_avg10: 80}\n")
    assert a.tick()[0].written == "1024"


def test_configured_max_step_takes_several_ticks_to_settle(root: Root, state: Path) -> None:
    drv = FakeDriver(root, ["a"], state / "journal.json")
    a = configured_agent(root, state, drv, StubModel(PREFERS_1024),
                         "drivers:\n  readahead:\n    policies:\n"
                         "      max_step_factor: 16\n      cooldown_s: 0\n")
    assert [a.tick()[0].written for _ in range(3)] == ["64", "1024", None]


def test_changes_per_hour_counts_the_agents_own_writes(root: Root, state: Path) -> None:
    model = StubModel(PREFERS_1024)
    a = agent(root, state, model, names=("a",))
    a.policies = [AllowedRange(4, 4096), MaxChangesPerHour(1), MinGain(0.05)]
    assert a.tick()[0].written == "1024"
    model.scores = {4: 0.95, 64: 0.60, 1024: 0.30}  # the workload turned random
    d = a.tick()[0]
    assert (d.best, d.chosen, d.written) == (4, 1024, None)
    assert d.verdicts[-1]["policy"] == "max_changes_per_hour"
    assert d.verdicts[-1]["reason"].startswith("1 of 1 changes in the last hour")
    assert len(a.changes["a"]) == 1


def test_write_times_older_than_an_hour_are_dropped_at_the_next_write(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024), names=("a",))
    a.changes["a"] = [time.monotonic() - 4000.0, time.monotonic() - 10.0]
    a.tick()
    assert len(a.changes["a"]) == 2  # the 10 s old write and this one


def test_a_decision_line_holds_what_the_tick_returned_and_its_cost_last(
        root: Root, state: Path) -> None:
    a = agent(root, state, StubModel(PREFERS_1024))
    decisions = a.tick()
    a.shutdown()
    lines = [json.loads(x) for x in (state / "audit.jsonl").read_text().splitlines()]
    lines = [x for x in lines if x["kind"] == "decision"]
    assert lines == [asdict(d) for d in decisions]
    assert all(list(x)[-2:] == ["tick_ms", "tick_cpu_ms"] for x in lines)
    assert all(x["tick_ms"] > 0 and x["tick_cpu_ms"] > 0 for x in lines)
    assert a.tick_ms == [decisions[0].tick_ms]
