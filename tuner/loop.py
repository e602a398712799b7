"""The central loop: observe → model scores → policies → apply → audit, once per tick."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from mltune.policies.base import RECENT_S, Policy, Proposal, Verdict
from mltune.policies.limits import gain_ratio

from .audit import AuditLog, dumps
from .driver import Driver, Observation, Target
from .errors import DeviceGone, MltuneError, StateError, WriteMismatch
from .journal import Entry, Journal
from .model import Model
from .modes import EMERGENCY, ModeConfig, TargetMode
from .recent import RecentScores
from .statefile import write_json
from .trials import Judge, Outcome, known, moved_apart

log = logging.getLogger("mltune")

# Proposal.pressure key → the observation feature that carries it (drivers without these
# features leave pressure unknown, which the pressure guard does not block on).
PRESSURE_FEATURES = {"memory_full_avg10": "psi_mem_full", "io_full_avg10": "psi_io_full"}
REDISCOVER_TICKS = 10  # look for new targets (a disk hot-plugged, a loop device set up)
# Agent.trigger starts with one of these: the watch saw the disk counters move, or the last
# tick saw the access pattern move (Agent._saw).
BY_WATCH, BY_TICK = "watch: ", "tick: "
# A decision's audit line ends with these, appended once the tick's cost is measured.
COST_FIELDS = ("tick_ms", "tick_cpu_ms")


@dataclass(frozen=True)
class Decision:
    """One line of the audit log."""

    time: float
    id: str
    driver: str
    target: str
    mode: str
    source: str
    current: int
    best: int | None
    chosen: int
    written: str | None
    scores: dict[str, float]
    verdicts: list[dict[str, object]]
    features: dict[str, float | None]
    # Wall time of the tick: everything but the sampling window and the write() of its own
    # audit line (the line is built within it; see Agent.tick).
    tick_ms: float
    note: str = ""
    dry_run: bool = False
    kind: str = "decision"
    trigger: str = ""  # why the tick ran early ("" when on schedule)
    tick_cpu_ms: float = 0.0  # CPU time of the tick (the window costs next to none)
    averaged: int = 1  # ticks whose mean scores are ``scores`` (mltune.recent)


# A decision's fields that _decide may leave out (their defaults), but for the tick's cost,
# which ends its audit line (COST_FIELDS).
LINE_DEFAULTS = {f.name: f.default for f in fields(Decision)
                 if f.default is not MISSING and f.name not in COST_FIELDS}


@dataclass
class Agent:
    driver: Driver
    model: Model | None
    policies: Sequence[Policy]
    targets: list[Target]
    journal: Journal | None  # None in dry-run: nothing is written, nothing to restore
    audit_path: Path | None
    model_note: str = ""
    changes: dict[str, list[float]] = field(default_factory=dict)  # write times, last hour
    last_written: dict[str, str] = field(default_factory=dict)
    frozen: dict[str, str] = field(default_factory=dict)  # target → why
    tick_ms: list[float] = field(default_factory=list)
    mode_cfg: ModeConfig = field(default_factory=ModeConfig)
    judge: Judge = field(default_factory=Judge)
    modes: dict[str, TargetMode] = field(default_factory=dict)
    ticks: int = 0
    decisions: int = 0
    watch_s: float = 0.25  # between ticks, look for a workload change this often (0: off)
    early_ticks: int = 0  # ticks run before their time because the workload changed
    trigger: str = ""  # why the current tick runs early ("" on schedule)
    retick: str = ""  # why the next tick should come soon: the last one saw a phase change
    # The retick is taken after an early tick too (see _wait): asked for by a window that
    # caught no access, or by the first tick after a write, which straddled it.
    retick_always: bool = False
    # How soon the retick comes (0: 2 x watch_s). After a window that caught no access,
    # watch_s: such a window came 0.22-0.30 s into a phase, before its fio read anything
    # (the window itself lengthened to 0.3 s for finding nothing); 2 x watch_s more put
    # the next tick ~1.05 s into mmap random reads, its step to 32 then needed a second
    # one to 4, and the phase settled at 2.2 s (10 s mix -v31). In every stored log
    # (40 such windows, -v20 to -v31) the tick after one saw accesses.
    retick_s: float = 0.0
    # target → (last signature known, whether the last active tick saw no pattern at all)
    seen: dict[str, tuple[tuple[float, ...] | None, bool]] = field(default_factory=dict)
    # target → monotonic time its access pattern was last seen to change, or first seen
    # (policies.limits.MinGain: a short step on the plateau only while the workload is new)
    moved_at: dict[str, float] = field(default_factory=dict)
    recent: RecentScores = field(default_factory=RecentScores)
    # target → (tick, old, new, gain it was made for) of mltune's last write to it (a
    # change: the predicted gain; a revert: the measured loss it undid), and whether it was
    # a revert
    steps: dict[str, tuple[int, int, int, float, bool]] = field(default_factory=dict)
    audit_max_bytes: int = 0  # audit.jsonl rotated past this size (0: no limit)
    audit: AuditLog | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.audit = None if self.audit_path is None \
            else AuditLog(self.audit_path, self.audit_max_bytes)

    @property
    def last_step(self) -> dict[str, tuple[int, int]]:
        """target → (old, new) of mltune's last write, if made on the model's word (not a
        revert): policies.limits.MinGain lowers the bar for a step further than it."""
        return {t: (s[1], s[2]) for t, s in self.steps.items() if not s[4]}

    @property
    def dry_run(self) -> bool:
        return self.journal is None

    def tick(self) -> list[Decision]:
        t0, c0 = time.perf_counter(), time.thread_time()
        self.ticks += 1
        if self.ticks % REDISCOVER_TICKS == 0:
            self._rediscover()
        obs = self._observe()
        window = max((o.window_s for o in obs.values()), default=0.0)
        rows = []  # each decision's fields but the tick's cost: a Decision is built once
        for target in list(self.targets):
            try:
                o = obs.get(target.name)
                if o is None:
                    self.driver.current(target)  # raises DeviceGone if it was removed
                    log.warning("%s/%s: no observation this tick", self.driver.name, target.name)
                    continue
                rows.append(self._decide(target, o))
            except DeviceGone as err:
                self._drop(target, err)
            except MltuneError as err:
                log.warning("%s/%s: %s", self.driver.name, target.name, err)
        # The audit lines are part of the tick's cost: built here, but for the cost itself,
        # which is appended once measured; only the write() comes after the measurement.
        heads = [dumps({**LINE_DEFAULTS, **f, "trigger": self.trigger})[:-1]
                 for f in rows] if self.audit is not None else []
        # Tick cost excludes the sampling window, during which the agent only sleeps.
        tick_ms = round((time.perf_counter() - t0 - window) * 1000, 3)
        # CPU time of this thread: the tick's own cost, without the time the scheduler gave
        # other processes meanwhile (on 2 cores shared with the workload, often most of it).
        cpu_ms = round((time.thread_time() - c0) * 1000, 3)
        self.tick_ms.append(tick_ms)
        if self.audit is not None:
            self.audit.write([f'{h},"tick_ms":{tick_ms},"tick_cpu_ms":{cpu_ms}}}' for h in heads])
        return [Decision(**f, tick_ms=tick_ms, tick_cpu_ms=cpu_ms, trigger=self.trigger)
                for f in rows]

    def _observe(self) -> dict[str, Observation]:
        try:
            return self.driver.observe(self.targets)
        except DeviceGone as err:
            # Raced with a removal between listing and reading: drop what is gone, retry once.
            before = len(self.targets)
            for t in list(self.targets):
                try:
                    self.driver.current(t)
                except DeviceGone as gone:
                    self._drop(t, gone)
            if self.targets and len(self.targets) < before:
                try:
                    return self.driver.observe(self.targets)
                except DeviceGone:
                    pass
            log.warning("%s: no observation this tick (%s)", self.driver.name, err)
            return {}
        except MltuneError as err:
            # e.g. /proc unreadable in a container: skip the tick, keep the agent alive.
            log.warning("%s: no observation this tick (%s)", self.driver.name, err)
            return {}

    def _drop(self, target: Target, err: Exception) -> None:
        log.warning("%s/%s: dropped (%s)", self.driver.name, target.name, err)
        self.targets = [t for t in self.targets if t.name != target.name]
        self.judge.cancel(target.name)
        self.recent.forget(target.name)
        self.seen.pop(target.name, None)
        self.moved_at.pop(target.name, None)

    def _rediscover(self) -> None:
        """Pick up targets that appeared since start (or came back) and match the filters."""
        try:
            found = self.driver.discover()
        except MltuneError as err:  # e.g. a device named with --device is missing right now
            log.debug("%s: rediscovery skipped: %s", self.driver.name, err)
            return
        known = {t.name for t in self.targets}
        for t in found:
            if t.name not in known:
                log.warning("%s/%s: new target picked up", self.driver.name, t.name)
                self.targets.append(t)

    def _check_outside_write(self, target: Target, current: int) -> None:
        """Someone else (an admin, another tool) set the knob: back off for good. Their
        value is theirs: it is not overwritten, and not "restored" at exit either."""
        mine = self.last_written.get(target.name)
        if mine is None or str(current) == mine or target.name in self.frozen:
            return
        why = f"{self.driver.knob} is {current}, mltune last wrote {mine}: changed outside"
        self.frozen[target.name] = why
        self._save_state()
        if self.journal is not None:
            self.journal.forget(target.path)
        log.warning("%s/%s: frozen (%s); `mltune resume %s` lifts it", self.driver.name,
                    target.name, why, target.name)

    def _save_state(self) -> None:
        """What `mltune status` shows of the running agent (frozen targets)."""
        if self.audit_path is None:
            return
        try:
            write_json(self.audit_path.parent / "state.json",
                       {"format": "mltune-state", "version": 1, "pid": os.getpid(),
                        "driver": self.driver.name, "frozen": dict(self.frozen),
                        "advise": self.dry_run,
                        "modes": {t: {"mode": m.mode, "why": m.why}
                                  for t, m in self.modes.items()}})
        except OSError as err:
            log.warning("state file not written: %s", err.strerror)

    def resume(self, name: str) -> bool:
        """Lift a freeze (the current value becomes the new original) or an EMERGENCY that
        failed writes caused."""
        lifted = name in self.modes and self.modes[name].lift()
        if lifted:
            log.warning("%s/%s: %s", self.driver.name, name, lifted)
        if self.frozen.pop(name, None) is None and not lifted:
            return False  # not frozen: keep watching for outside writes
        self.last_written.pop(name, None)
        self._save_state()
        return True

    def _mode(self, target: Target) -> TargetMode:
        state = self.modes.get(target.name)
        if state is None:
            state = self.modes[target.name] = TargetMode(self.mode_cfg)
            if self.model is None:
                state.emergency("model", f"no valid model: {self.model_note}")
            self._save_state()
        return state

    def _transition(self, target: Target, note: str | None) -> None:
        """Log a mode change; entering EMERGENCY undoes mltune's writes to the target."""
        if note is None:
            return
        log.warning("%s/%s: mode %s", self.driver.name, target.name, note)
        if self.modes[target.name].mode == EMERGENCY:
            self.judge.cancel(target.name)
            if self.journal is not None:
                for line in self.journal.restore(only={target.name}):
                    log.warning("%s", line)
                # The original is back: not an outside write, and nothing of ours to watch.
                self.last_written.pop(target.name, None)
        self._save_state()

    def _decide(self, target: Target, o: Observation) -> dict[str, Any]:
        """The fields of the target's Decision, but for the tick's cost and trigger."""
        current = self.driver.current(target) if o.current is None else o.current
        self._check_outside_write(target, current)
        state = self._mode(target)
        feats = {k: (None if math.isnan(v) else round(v, 4)) for k, v in o.features.items()}
        pressure = {k: o.features[f] for k, f in PRESSURE_FEATURES.items() if f in o.features}
        moved = state.pressure(pressure)
        self._transition(target, moved)
        if moved is not None and state.mode == EMERGENCY:
            current = self.driver.current(target)  # what the restore put back
        self.decisions += 1
        base = dict(time=o.time, id=f"{os.getpid()}-{self.decisions}", driver=self.driver.name,
                    target=target.name, mode=state.mode, source=o.source, current=current,
                    features=feats, dry_run=self.dry_run)
        keep = dict(best=None, chosen=current, written=None, scores={}, verdicts=[])
        if state.mode == EMERGENCY:
            return {**base, **keep, "note": f"emergency, hands off: {state.why}"}
        if not o.active:
            # No reads, no evidence: whatever the model says about an idle device is noise.
            return {**base, **keep, "note": "idle this tick: kept"}
        assert self.model is not None  # no model: EMERGENCY from the first tick
        part = self.driver.signature(o)
        moved = self._saw(target.name, part)
        sig = known(part)
        outcome = self.judge.observe(target.name, current, self.driver.reward(o), sig)
        if outcome is not None:
            reverted = self._outcome(target, outcome, sig)
            if reverted is not None:
                undid = 1 / outcome.ratio - 1 if outcome.ratio else 0.0
                self.steps[target.name] = (self.ticks, outcome.new, int(reverted), undid, True)
                return {**base, **keep, "chosen": outcome.old, "written": reverted,
                        "note": f"reverted {outcome.new} → {outcome.old}: {outcome.reason}"}
        candidates = self.driver.candidates(target)
        scores, averaged = self.recent.mean(target.name, current,
                                            self.model.score(o.features, candidates), moved)
        now = time.monotonic()
        vetoed = self.judge.vetoed(target.name, sig, now, scores, current)
        allowed = [v for v in scores if v not in vetoed] or [current]
        best = max(allowed, key=lambda v: scores.get(v, -math.inf))
        written = None
        if o.blind:
            # The disk counters span the whole interval, the sample only its end: they
            # describe the workload that was, the sample says nothing of the one that is.
            # In every stored benchmark log such a window (61) came at a phase boundary:
            # 56 were 0.22-0.29 s into a phase, before its fio read anything; 20 wrote,
            # with the last phase's counters (2048 -> 64 on four streams: 256 until 1.8 s).
            # The next tick comes 2 x watch_s later (_saw, _wait) and sees the new workload.
            value, verdicts = current, []
            note = "the trace window caught no access: kept"
        else:
            value, verdicts = self._check(target, current, best, scores, pressure,
                                          state.mode, vetoed,
                                          self.judge.win(target.name, sig, now))
            note = ""
        step = self.steps.get(target.name)
        if value == current and not o.blind and not self.retick and step is not None \
                and step[0] == self.ticks - 1:
            # This tick's disk counters straddle the last write, and files opened before it
            # read at the old value until reopened: mmap random reads after a stream showed
            # 277 KiB requests 0.5 s after 2560 -> 16 (16 kept over 4), 16 KiB a second later
            # (4 written at 2.05 s, shuffled mix -v19). Look again soon, not a whole interval on.
            self.retick = f"{target.name}: the last tick straddled a write"
            self.retick_always = True
        if target.name in self.frozen and not o.blind:
            note = f"frozen, nothing written: {self.frozen[target.name]}"
        elif value != current and not self.dry_run:
            written = self._try_apply(target, value, state)
            if written is None:
                note = "write failed (see log)"
            else:
                self.steps[target.name] = (self.ticks, current, int(written),
                                           gain_ratio(scores, value, current) - 1, False)
                before = self.judge.base(target.name, current, value)
                unjudged = self.judge.start(target.name, base["id"], current, int(written),
                                            _ratio(scores, value, before))
                if unjudged is not None:
                    self._outcome(target, unjudged, sig)
        elif value != current:
            log.info("%s/%s: would set %s %d → %d (dry run)", self.driver.name, target.name,
                     self.driver.knob, current, value)
        return {**base, "best": best, "chosen": value, "written": written,
                "scores": {str(v): round(s, 4) for v, s in scores.items()},
                "verdicts": [v.to_json() for v in verdicts], "note": note,
                "averaged": averaged}

    def _saw(self, name: str, sig: tuple[float, ...] | None) -> bool:
        """Whether this tick is unlike the last active one; if the access pattern moved, or
        the window caught no access at all right after one that saw a pattern, ask for an
        early next tick.

        The disk counters the watch looks at can miss a phase change: random page faults
        at readahead 2560 read about as many MB/s, in requests as large, as the stream
        before them. The trace does see it, but a tick that lands early in the new phase
        sees too little to act on (0.3 s in, 2560 faults/s are ~8 in a 50 ms window, and
        the window caught none), and the next tick on schedule came 1 s later: settle
        2.6-2.7 s in the shuffled mix. In the stored benchmark logs a window that caught
        nothing after one that saw a pattern came within 1.5 s of a phase start 13 times
        of 14."""
        last, was_blind = self.seen.get(name, (None, True))
        self.seen[name] = (sig if sig is not None else last, sig is None)
        moved = moved_apart(last, sig, self.judge.cfg.workload_shift)
        if moved or (last is None and sig is not None):
            self.moved_at[name] = time.monotonic()
        if not self.retick:
            if moved:
                self.retick = f"{name}: access pattern changed at the last tick"
                # Even after an early tick, when the window could not tell the new pattern
                # (too few accesses per file for the stream statistics): 0.07 s into mmap
                # random reads after a stream the watch's tick saw faults in 8 files, the
                # scores were flat (2048 and 128 within 1 %), and the tick on schedule wrote
                # 16 a second later (settle 2.4 s, shuffled mix --reclaim, -v24).
                self.retick_always = any(math.isnan(x) for x in sig or ())
            elif sig is None and not was_blind:
                self.retick = f"{name}: the last tick's trace caught no access"
                self.retick_always = True
                self.retick_s = self.watch_s
        # For the mean of scores (mltune.recent), a tick that saw no access pattern at all
        # is unlike one that did: the model reads it through another route.
        return moved or was_blind != (sig is None)

    def _outcome(self, target: Target, outcome: Outcome,
                 sig: tuple[float, ...] | None) -> str | None:
        """Record a measured outcome; revert a regression. Returns what a revert wrote."""
        state = self.modes[target.name]
        self._audit_lines([{"kind": "outcome", "time": time.time(), "driver": self.driver.name,
                            "target": target.name, **vars(outcome)}])
        log.info("%s/%s: change %d → %d %s (%s)", self.driver.name, target.name, outcome.old,
                 outcome.new, outcome.verdict, outcome.reason)
        self._transition(target, state.outcome(outcome, self.judge.cfg.min_before))
        self.judge.won(target.name, outcome, sig, time.monotonic())  # kept with a gain only
        if outcome.verdict != "reverted" or target.name in self.frozen \
                or state.mode == EMERGENCY:
            return None
        self.judge.veto(target.name, outcome, sig, time.monotonic())
        written = self._try_apply(target, outcome.old, state)
        if written is not None:
            self.judge.wrote(target.name)
        return written

    def _try_apply(self, target: Target, value: int, state: TargetMode) -> str | None:
        """Write; a refused write counts towards EMERGENCY instead of stopping the agent."""
        try:
            got = self._apply(target, value)
        except (DeviceGone, StateError):
            raise  # the target is gone / no original can be kept: handled by the caller
        except MltuneError as err:
            log.warning("%s/%s: write of %d failed: %s", self.driver.name, target.name, value,
                        err)
            self._transition(target, state.write_failed(str(err)))
            return None
        state.write_ok()
        return got

    def _check(self, target: Target, current: int, best: int, scores: dict[int, float],
               pressure: Mapping[str, float], mode: str, vetoed: Mapping[int, str],
               measured: tuple[int, int, float] | None = None
               ) -> tuple[int, list[Verdict]]:
        value = best
        verdicts = []
        recent = tuple(self.changes.get(target.name, ()))
        last = recent[-1] if recent else None
        now = time.monotonic()
        judging = self.judge.pending(target.name)
        trial = self.judge.open_trial(target.name)
        # The tick right after a write sees the transition (policies.guard.Settling). Not a
        # tick the watch ran early: its reference rates were taken after the write, so it
        # saw the workload itself change. One the last tick brought forward does see it.
        step = self.steps.get(target.name)
        if step is not None and step[0] == self.ticks - 1 \
                and not self.trigger.startswith(BY_WATCH):
            settling: tuple[int, int] | None = (step[1], step[2])
            settling_gain = step[3]
        else:
            settling, settling_gain = None, 0.0
        p = None
        for policy in self.policies:
            if value == current and not getattr(policy, "judges_keep", False):
                continue  # nothing to judge (policies.base.Policy): ~0.1 ms of a tick
            if p is None or p.value != value:  # a new one only when a policy clamped
                p = Proposal(self.driver.name, target.name, current, value, scores, now, last,
                             recent, pressure, mode, judging, vetoed, trial, settling,
                             settling_gain, measured, self.last_step.get(target.name),
                             self.moved_at.get(target.name))
            v = policy.check(p)
            verdicts.append(v)
            if v.action == "deny":
                return current, verdicts
            value = v.value
        return value, verdicts

    def _apply(self, target: Target, value: int) -> str:
        change = self.driver.plan(target, value)
        assert self.journal is not None
        # The original is on disk before the first write: a crash right after can be undone.
        self.journal.record(Entry(self.driver.name, target.name, change.path, target.owner,
                                  change.old, time.time()))
        try:
            got = self.driver.apply(change)
        except WriteMismatch:
            # The knob now holds what the kernel made of mltune's own write: not an outside
            # change to back off from (that would also drop the journaled original).
            self.last_written.pop(target.name, None)
            raise
        finally:
            # Counted whatever the read-back showed: a kernel that normalises or refuses the
            # value made the agent write again every tick, past cooldown and hourly limit.
            now = time.monotonic()
            self.changes[target.name] = [t for t in self.changes.get(target.name, ())
                                         if now - t < RECENT_S] + [now]
        self.last_written[target.name] = got
        log.info("%s/%s: %s %s → %s", self.driver.name, target.name, self.driver.knob,
                 change.old, got)
        return got

    def _audit_lines(self, lines: list[dict[str, Any]]) -> None:
        if self.audit is not None:
            self.audit.write([dumps(line) for line in lines])

    def poll_resume(self) -> None:
        """`mltune resume T` drops a file ``resume-T`` in the state directory; the running
        agent picks it up here (no socket, no signal numbers to remember)."""
        if self.audit_path is None:
            return
        for req in self.audit_path.parent.glob("resume-*"):
            name = req.name[len("resume-"):]
            if self.resume(name):
                log.info("%s/%s: resumed by request", self.driver.name, name)
            req.unlink(missing_ok=True)

    def run(self, interval: float, stop: threading.Event, once: bool = False) -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            # Every tick, not only while frozen: a request left when nothing was frozen must
            # be consumed now, not lift a later freeze the user never saw.
            self.poll_resume()
            wrote = {d.target for d in self.tick() if d.written is not None}
            if once or not self.targets:
                if not self.targets:
                    log.warning("no targets left; stopping")
                return
            next_at = self._wait(next_at + interval, stop, wrote)

    def _wait(self, until: float, stop: threading.Event, wrote: set[str]) -> float:
        """Sleep until ``until``, looking at the driver's cheap change check every
        ``watch_s``; return when the next tick is due: ``until``, or now if the workload
        changed (the tick then says why, in ``trigger``). ``wrote``: the targets the last
        tick wrote, whose rates move for that reason alone.

        A tick that saw the access pattern move (:meth:`_saw`), or wrote, or was the first
        after a write (:meth:`_decide`), brings the next one to 2 x ``watch_s`` after it
        (``watch_s`` after a window that caught no access: ``retick_s``);
        after an early tick, only a write, the first tick after one, a window that
        caught no access, or one that saw the pattern move but not enough of it to tell
        the stream statistics does (the watch's tick 0.27 s into mmap random reads after four
        streams saw nothing and the next tick came at 1.27 s, 10 s mix ``-v18``; in every
        stored log such early ticks were 3, each 0.24-0.28 s into a phase). A write
        often is the first of two or three steps (2560 -> 32 -> 16 -> 4 from a window that
        straddled a phase change, each step a tick on schedule: settle 2.2 s in the 10 s
        mix, ``-v15``); writes are few, and bounded by the policies.

        After an early tick the watch does not look until the tick on schedule: at most one
        early tick per interval. A stream that stalls in bursts (reads/s 400 <-> 13000 every
        0.25 s after memory filled up) otherwise draws a tick at every burst. Letting the
        watch look again 0.5 s after an early tick (``-v16``) cut the wait of mmap random
        reads whose stream spent the early tick 0.3 s before them (0.9-1.0 s -> 0.5 s, 6 s
        mix), but tripled the watch's ticks late in steady streams (8 -> 23, 10 s mix), whose
        windows read bursts, and two stream writes 2048 -> 256 followed (none in ``-v15``)."""
        look = getattr(self.driver, "changed", None)
        was_early, self.trigger = bool(self.trigger), ""
        retick, self.retick = self.retick, ""
        always, self.retick_always = self.retick_always, False
        after, self.retick_s = self.retick_s or 2 * self.watch_s, 0.0
        if wrote and not retick:
            retick = f"{', '.join(sorted(wrote))}: wrote at the last tick"
        elif was_early and not wrote and not always:
            retick = ""
        soon = time.monotonic() + after
        if retick and self.watch_s > 0 and soon < until - self.watch_s / 2:
            if not stop.wait(after):
                self.trigger = BY_TICK + retick
                self.early_ticks += 1
            return time.monotonic()
        if look is None or self.watch_s <= 0 or was_early:
            stop.wait(max(0.0, until - time.monotonic()))
            return until
        try:
            look(self.targets, reset=True, wrote=wrote)
            while (left := until - time.monotonic()) > 0:
                if stop.wait(min(self.watch_s, left)):
                    break
                why = look(self.targets)
                if why and until - time.monotonic() > self.watch_s / 2:
                    self.trigger = BY_WATCH + why
                    self.early_ticks += 1
                    return time.monotonic()
        except MltuneError as err:  # the tick will meet the same problem and report it
            log.debug("%s: change check failed: %s", self.driver.name, err)
            stop.wait(max(0.0, until - time.monotonic()))
        return until

    def shutdown(self) -> list[str]:
        notes = self.journal.restore() if self.journal is not None else []
        self.driver.close()
        if self.audit is not None:
            self.audit.close()
        return notes

    def summary(self) -> dict[str, Any]:
        ticks = sorted(self.tick_ms)
        return {"ticks": len(ticks), "early_ticks": self.early_ticks,
                "tick_ms_median": ticks[len(ticks) // 2] if ticks else None}


def _ratio(scores: Mapping[int, float], new: int, old: int) -> float | None:
    """The model's expected reward ratio of a change (scores are fractions of the best).

    Scores below SCORE_FLOOR count as it, as in MinGain: 0.815 over 0.0071 (mmap random reads,
    2560 → 4) "predicted" 114x, the 25.9x measured was taken for over-promising, and a right
    change demoted the target to learning mode (4x steps: 4 s settles after it)."""
    ratio = gain_ratio(scores, new, old)
    return None if math.isnan(ratio) else ratio
