"""The regression guard's measurements: did a change the model asked for actually help?

After each write the target's reward (a per-driver signal, higher is better; for readahead
the application's read throughput seen in the trace) is collected for a window of ticks and
compared with the ticks before the change at the old value. Worse beyond a tolerance: the
loop reverts and vetoes that value for that workload for a while. A comparison is void
("inconclusive") when the workload itself changed meanwhile (its signature moved), because
then the reward moved for reasons that are not the change.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class GuardConfig:
    window_ticks: int = 3  # rewards compared on each side of a change
    settle_ticks: int = 1  # ticks ignored right after a write (readahead reaches files at open);
    # nor is one of them ever a baseline for a later change
    tolerance: float = 0.3  # revert when after/before < 1 - tolerance
    veto_s: float = 600.0  # how long a reverted value stays barred for that workload
    workload_shift: float = 0.25  # signature distance beyond which a comparison is void
    # Baseline ticks a revert needs, and a demotion for over-promising (mltune.modes). The
    # reward of mmap random reads moved 2-3x between seconds at one value
    # (bench/warmup.py), and a one-tick baseline (the phase's second second, its warm-up)
    # reverted 16 -> 4 twice on 0.31x and 0.60x where static 4 read
    # 1.16x and 1.40x static 16 (10 s mix --reclaim, -v23). Of the 264 stored outcomes with a
    # baseline, those were the only reverts on one tick; both right reverts had three.
    min_before: int = 2


@dataclass(frozen=True)
class Trial:
    decision: str  # id of the decision that wrote ``new``
    old: int
    new: int
    predicted: float | None  # model's expected reward ratio, score(new) / score(old)
    before: tuple[float, ...]
    signature: tuple[float, ...] | None


@dataclass(frozen=True)
class Outcome:
    decision: str
    old: int
    new: int
    verdict: Literal["kept", "reverted", "inconclusive"]
    reason: str
    before: float | None = None
    after: float | None = None
    ratio: float | None = None
    predicted: float | None = None
    before_ticks: int = 0  # baseline ticks the ratio stands on


@dataclass(frozen=True)
class Veto:
    value: int  # reverted
    kept: int  # the value it was reverted to
    signature: tuple[float, ...] | None
    until: float
    reason: str


@dataclass(frozen=True)
class Win:
    """A change measured better than the value before it, at a workload."""

    old: int
    new: int
    gain: float  # measured reward ratio - 1, e.g. 0.16
    signature: tuple[float, ...] | None
    until: float


def extends(trial: tuple[int, int], old: int, new: int) -> bool:
    """Whether a change ``old`` → ``new`` takes the trial (its old, new) further the same
    way: 2560 → 32 measured, then 32 → 4."""
    t_old, t_new = trial
    return t_new == old and (t_old - t_new) * (old - new) > 0


def known(sig: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """The signature if every part of it is known, else None (unknown workload)."""
    return None if sig is None or any(math.isnan(x) for x in sig) else sig


def moved_apart(a: Sequence[float] | None, b: Sequence[float] | None, limit: float) -> bool:
    """True when a part known in both signatures differs by more than ``limit``: a partly
    known one still tells that reads went from a stream to page faults."""
    if a is None or b is None or len(a) != len(b):
        return False
    return any(abs(x - y) > limit for x, y in zip(a, b, strict=True))  # NaN: False


def shifted(a: Sequence[float] | None, b: Sequence[float] | None, limit: float) -> bool:
    """True when two workload signatures differ (unknown counts as different)."""
    if a is None or b is None or len(a) != len(b):
        return True
    return any(not abs(x - y) <= limit for x, y in zip(a, b, strict=True))  # NaN: shifted


@dataclass
class Judge:
    """Open trials, recent rewards and vetoes of every target of one driver."""

    cfg: GuardConfig = field(default_factory=GuardConfig)
    trials: dict[str, Trial] = field(default_factory=dict)
    _after: dict[str, list[float]] = field(default_factory=dict)
    _history: dict[str, deque[tuple[int, float | None, tuple[float, ...] | None]]] = \
        field(default_factory=dict)
    _vetoes: dict[str, list[Veto]] = field(default_factory=dict)
    _wins: dict[str, Win] = field(default_factory=dict)
    _age: dict[str, int] = field(default_factory=dict)
    _fresh: dict[str, int] = field(default_factory=dict)  # settle ticks still to come

    def observe(self, target: str, value: int, reward: float | None,
                signature: tuple[float, ...] | None) -> Outcome | None:
        """Feed one active tick; returns the trial's outcome once it is decided."""
        hist = self._history.setdefault(target, deque(maxlen=4 * self.cfg.window_ticks))
        settling = self._fresh.get(target, 0) > 0
        if settling:
            # Settling after a write: not measured for the trial, nor a baseline for the
            # next change. The window of a phase's first write is the phase's first second,
            # whose reward is not the phase's: 64 read there, in an emptied cgroup, 2.2x
            # what 4 read later, and 64 -> 16 -> 4 was reverted on it (10 s mix, --reclaim,
            # -v21, round 3).
            self._fresh[target] -= 1
        hist.append((value, None if settling else reward, signature))
        trial = self.trials.get(target)
        if trial is None:
            return None
        if value != trial.new:
            return self._end(target, "inconclusive", f"value is {value} before the verdict")
        if shifted(signature, trial.signature, self.cfg.workload_shift):
            return self._end(target, "inconclusive", "workload changed during the window")
        self._age[target] = age = self._age.get(target, 0) + 1
        if settling:
            return None
        if reward is None:
            if age > self.cfg.settle_ticks + 3 * self.cfg.window_ticks:
                return self._end(target, "inconclusive", f"no reward measured in {age} ticks")
            return None
        after = self._after.setdefault(target, [])
        after.append(reward)
        if len(after) < self.cfg.window_ticks:
            return None
        return self._verdict(target, trial, after)

    def base(self, target: str, old: int, new: int) -> int:
        """The value a change ``old`` → ``new`` will be judged against: ``old``, or the old
        value of the trial it takes further the same way (see :meth:`start`)."""
        t = self.trials.get(target)
        return t.old if t is not None and extends((t.old, t.new), old, new) else old

    def open_trial(self, target: str) -> tuple[int, int] | None:
        t = self.trials.get(target)
        return None if t is None else (t.old, t.new)

    def start(self, target: str, decision: str, old: int, new: int,
              predicted: float | None) -> Outcome | None:
        """A write happened: the ticks before it at ``old``, same workload, are the baseline.
        Without one nothing can be judged: the outcome says so at once, no trial is held.

        A write that takes the open trial further the same way (the model's best moved on
        while the first step was measured: 2560 → 32, then 4) extends that trial: both steps
        are judged together against the value before the first, and a regression reverts
        to that value. ``predicted`` is then relative to it too (:meth:`base`)."""
        self.wrote(target)
        t = self.trials.get(target)
        if t is not None and extends((t.old, t.new), old, new):
            self.trials[target] = Trial(decision, t.old, new, predicted, t.before, t.signature)
            self._after[target] = []
            self._age[target] = 0
            return None
        hist = self._history.get(target, deque())
        sig = hist[-1][2] if hist else None
        before = [r for v, r, s in hist if v == old and r is not None
                  and not shifted(s, sig, self.cfg.workload_shift)][-self.cfg.window_ticks:]
        self.trials[target] = Trial(decision, old, new, predicted, tuple(before), sig)
        self._after[target] = []
        self._age[target] = 0
        if not before:
            return self._end(target, "inconclusive", "no reward measured at the old value")
        return None

    def wrote(self, target: str) -> None:
        """Any write to the target (a change, a revert): the ticks that settle after it
        are no baseline (:meth:`observe`)."""
        self._fresh[target] = self.cfg.settle_ticks

    def cancel(self, target: str) -> None:
        self.trials.pop(target, None)
        self._wins.pop(target, None)

    def pending(self, target: str) -> str:
        t = self.trials.get(target)
        if t is None:
            return ""
        got = len(self._after.get(target, ()))
        return f"judging {t.old} → {t.new}: {got} of {self.cfg.window_ticks} ticks measured"

    def veto(self, target: str, outcome: Outcome, signature: tuple[float, ...] | None,
             now: float) -> None:
        self._vetoes.setdefault(target, []).append(
            Veto(outcome.new, outcome.old, signature, now + self.cfg.veto_s,
                 f"{outcome.new} reverted at this workload: {outcome.reason}"))

    def won(self, target: str, outcome: Outcome, signature: tuple[float, ...] | None,
            now: float) -> None:
        """Remember a kept change that measured a gain, for as long as a veto lasts: going
        back toward its old value at this workload then needs as much
        (policies.guard.MeasuredGain)."""
        if outcome.verdict == "kept" and outcome.ratio is not None and outcome.ratio > 1:
            self._wins[target] = Win(outcome.old, outcome.new, outcome.ratio - 1, signature,
                                     now + self.cfg.veto_s)

    def win(self, target: str, signature: tuple[float, ...] | None,
            now: float) -> tuple[int, int, float] | None:
        """(old, new, measured gain) of the target's last measured gain, if it was measured
        at this workload and not longer than ``veto_s`` ago."""
        w = self._wins.get(target)
        if w is None or w.until <= now or shifted(w.signature, signature,
                                                  self.cfg.workload_shift):
            return None
        return w.old, w.new, w.gain

    def vetoed(self, target: str, signature: tuple[float, ...] | None, now: float,
               values: Iterable[int] = (), current: int | None = None) -> dict[int, str]:
        """Values barred at this workload: each reverted value, and those of ``values``
        beyond it, seen from the value it was reverted to. For one workload throughput rises
        to one peak and falls past it, so when 4096 → 1024 measured 0.48x, 512 is no better
        (a stream in the 10 s mix went 4096 → 1024, reverted, then 4096 → 512).

        By the same rule, where ``current`` is itself beyond a reverted value, a value
        between the two is nearer the peak than ``current`` and is not barred: 2048 → 256
        was reverted on a stream, a later phase left the knob at 8, and when that stream
        came back every step up from 8 (32, a learning-mode trial) counted as "beyond 256"
        and the stream read at 8 for a whole phase (10 s mix, -v17, round 3)."""
        live = [v for v in self._vetoes.get(target, ()) if v.until > now]
        self._vetoes[target] = live
        barred: dict[int, str] = {}
        for v in live:
            if shifted(v.signature, signature, self.cfg.workload_shift):
                continue
            side = v.value - v.kept  # which way "beyond" is
            # current beyond the reverted value: the values between are nearer the peak
            past = current if current is not None and (current - v.value) * side > 0 else None
            for c in (v.value, *values):
                if c in barred or (c - v.value) * side < 0:
                    continue
                if past is not None and (past - c) * side > 0:
                    continue
                barred[c] = (v.reason if c == v.value
                             else f"beyond {v.value} from {v.kept}; {v.reason}")
        return barred

    def _verdict(self, target: str, trial: Trial, after: list[float]) -> Outcome:
        before, now = statistics.fmean(trial.before), statistics.fmean(after)
        if before <= 0:
            return self._end(target, "inconclusive", "baseline reward is zero")
        ratio = now / before
        if ratio < 1 - self.cfg.tolerance:
            why = f"reward {ratio:.2f}x of before (< {1 - self.cfg.tolerance:.2f})"
            if len(trial.before) < self.cfg.min_before:
                # Too thin to act on: a revert also bars the value at this workload.
                why += f", but measured before on {len(trial.before)} tick(s): not reverted"
                return self._end(target, "inconclusive", why, before, now, ratio)
            return self._end(target, "reverted", why, before, now, ratio)
        return self._end(target, "kept", f"reward {ratio:.2f}x of before", before, now, ratio)

    def _end(self, target: str, verdict: Literal["kept", "reverted", "inconclusive"],
             reason: str, before: float | None = None, after: float | None = None,
             ratio: float | None = None) -> Outcome:
        t = self.trials.pop(target)
        self._after.pop(target, None)
        return Outcome(t.decision, t.old, t.new, verdict, reason, before, after, ratio,
                       t.predicted, len(t.before))
