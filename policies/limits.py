"""The policies every driver gets: allowed range, largest step, cooldown, changes per hour,
pressure guard, minimum predicted gain."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from mltune.trials import extends

from .base import RECENT_S, Proposal, Verdict


@dataclass(frozen=True)
class AllowedRange:
    """Never write outside [low, high]; a value outside is clamped to the nearest bound."""

    low: int
    high: int
    name: str = "range"
    judges_keep: ClassVar[bool] = True  # see Policy

    def check(self, p: Proposal) -> Verdict:
        if p.value < self.low:
            return Verdict(self.name, "clamp", self.low, f"{p.value} below minimum {self.low}")
        if p.value > self.high:
            return Verdict(self.name, "clamp", self.high, f"{p.value} above maximum {self.high}")
        return Verdict(self.name, "allow", p.value, f"within [{self.low}, {self.high}]")


# Scores below this count as this: they say "nothing fits" (an unseen pattern), and a ratio of
# two of them would be noise divided by noise.
SCORE_FLOOR = 0.05


@dataclass(frozen=True)
class MinGain:
    """Hysteresis: change only if the model predicts at least ``gain`` more throughput than
    keeping the current value, relative to it (0.10: 10 % more), so noise does not flap the knob.

    Relative, not a difference of scores: a score is a fraction of the best throughput, so a
    0.13 difference is a 15 % gain from 0.86 (mmap random reads, 16 → 4 KiB, where static 4
    measured 30 % faster) but 65 % from 0.20. An absolute 0.15 held 16 KiB for whole phases;
    between 512 and 2048 on a stream the scores swap by up to 7 % tick to tick, which a 10 %
    threshold still ignores (bench/results audit logs, README "Benchmark").

    A step that takes the change being measured (or the last tick's write) further the same
    way (2560 → 16, then 4, while the regression guard still judges the first) needs only
    ``further``: the first step cleared ``gain`` against the value before it, both are
    judged together against that value, and going back needs the full ``gain`` again, so it
    cannot flap. On mmap random reads the model puts 4 over 16 by 4-9 % where static 16
    reads 0.72-0.85 of 4, and the second step waited 1-2 s for a tick over 10 %. Replayed on
    every stored audit log (up to -v15), 3 % allowed 14 such second steps, all measured
    1.13-1.51x, and none of the stream steps 2048 → 4096, which scored under 2 % and
    measured 0.84-1.17x (`python bench/further_replay.py 0.03`).

    So does a step further than the last write within ``further_s`` of it when nothing
    measures that write: a window with no reward before it opens no trial, and the second
    step then waited for a tick over ``gain`` (mmap random reads, 4096 -> 16 at 1.04 s, 4 at
    +9.2 % denied at 2.59 s and written at 3.59 s, 10 s mix -v19). Within 3 s of the write,
    3 % allows 14 second steps on the stored logs: 13 measured 1.13-1.51x, one 1.10x
    (`python bench/further_replay.py 0.03 --within 3`).

    A step down between values at or above ``plateau_from`` needs ``plateau_gain``: there a
    stream reads about as fast at any value, and the model cannot rank them. On the stored
    audit logs (-v9 to -v17), every tick with both values >= 256 KiB and a predicted gain
    of 15-29 % pointed at a value the static sweep read at 0.89-1.19 of the held one, and
    the steps down that were written (4096/2048 → 256 on four streams) measured 0.63x and
    0.84x in the guard. Steps up are left at ``gain``: 256 → 2048 on one stream read 1.13x.

    A short step down on the plateau (to no less than the current value ÷ ``near_factor``)
    needs only ``near_gain``. The model does rank those: a sequential mmap reader held at
    4096 had 1024 scored +5.1-8.0 % over it, tick after tick, where the round's statics read
    1024 at 0.90-1.29x 4096 (median 1.20x; shuffled runs -v24 to -v32, 14 phases). Replayed
    on the logs of -v20 to -v32, 5 % passes 16 phases, 15 of them mmap readers: 10 read
    > 1.1x, 4 within 10 %, 2 < 0.9x (0.90x, and four streams 4096 → 2048 at 0.78x); none
    is a long step to 256, which the plateau is there for. (The models before -v20 ranked
    streams worse: with them it also passes seq 2048 → 512, read 0.73x.)

    Only within ``near_s`` of the workload's last change: a settled workload moves for
    ``plateau_gain``. The 0.78x above came 6.1 s into its phase, after six ticks that
    put no lower value more than 2 % over 4096; in -v33 (no time limit) four streams went 4096 →
    1024 at 7.1 s, on one tick at +5.3 % after ticks at 0.2-2.8 % (statics: 512 and 2048
    0.88x), and that phase settled at 7.1 s. Within 2 s of the phase start 10 of the 16
    pass: 7 read > 1.1x, one 0.90x, geometric mean 1.14x (`python bench/plateau_replay.py
    0.05 --within 2 --match=-v2 --match=-v30 --match=-v31 --match=-v32`)."""

    gain: float
    further: float | None = None  # None: the same as gain
    plateau_from: int | None = None  # None: no plateau
    plateau_gain: float = 0.0
    near_factor: float = 1.0  # 1: no short steps
    near_gain: float = 0.0
    near_s: float = 1.5
    further_s: float = 3.0
    name: str = "min_gain"

    def check(self, p: Proposal) -> Verdict:
        if p.value == p.current:
            return Verdict(self.name, "allow", p.value, "no change proposed")
        # A value that is not a candidate (current set by hand, or a proposal clamped by the
        # range policy to a bound between candidates) is judged by the nearest candidate.
        old = nearest_score(p.scores, p.current)
        new = nearest_score(p.scores, p.value)
        rel = gain_ratio(p.scores, p.value, p.current) - 1.0
        why = f"predicted gain {rel:+.1%} ({old:.2f} → {new:.2f} of best)"
        need = self.gain
        # The change being measured, or, when it could not be (no reward before it: a
        # window that caught no access), the write on the last tick.
        step = p.trial or p.settling
        if step is None and p.last_step is not None and p.last_change is not None \
                and p.now - p.last_change <= self.further_s:
            step = p.last_step
        if self.further is not None and step is not None and extends(step, p.current, p.value):
            need = min(self.gain, self.further)
            why += f", further than {step[0]} → {step[1]}"
        if self.plateau_from is not None and self.plateau_from <= p.value < p.current:
            if p.current <= p.value * self.near_factor and p.workload_since is not None \
                    and p.now - p.workload_since <= self.near_s:
                # Replaces the gain or further need: a short step's own threshold.
                need = self.near_gain
                why += (f", down between values >= {self.plateau_from} "
                        f"by <= {self.near_factor:g}x, workload new")
            elif self.plateau_gain > need:
                need = self.plateau_gain
                why += f", down between values >= {self.plateau_from}"
        if rel < need:
            return Verdict(self.name, "deny", p.current, f"{why} < {need * 100:g}%")
        return Verdict(self.name, "allow", p.value, why)


def nearest_score(scores: Mapping[int, float], value: int) -> float:
    """The score of ``value``, or of the nearest candidate if it is not one."""
    if value in scores:
        return scores[value]
    return scores[min(scores, key=lambda v: abs(v - value))]


def gain_ratio(scores: Mapping[int, float], new: int, old: int) -> float:
    """Predicted throughput of ``new`` over ``old``, scores floored at SCORE_FLOOR: what
    MinGain thresholds and what a trial's measured reward is compared with (mltune.loop)."""
    a, b = nearest_score(scores, new), nearest_score(scores, old)
    return max(a, SCORE_FLOOR) / max(b, SCORE_FLOOR)


@dataclass(frozen=True)
class Cooldown:
    """At most one write per target every ``seconds``."""

    seconds: float
    name: str = "cooldown"

    def check(self, p: Proposal) -> Verdict:
        if p.value == p.current or p.last_change is None:
            return Verdict(self.name, "allow", p.value, "no recent change")
        since = p.now - p.last_change
        if since < self.seconds:
            return Verdict(self.name, "deny", p.current,
                           f"last change {since:.1f}s ago < {self.seconds:g}s")
        return Verdict(self.name, "allow", p.value, f"last change {since:.1f}s ago")


@dataclass(frozen=True)
class MaxStep:
    """Move at most ``factor`` times up or down from the current value in one change
    (readahead works in powers of two, so the step is multiplicative). A small factor trades
    settle time for caution: at factor 4, going from 4 to 4096 takes five changes.

    The step is measured from the current value brought into [low, high] (the allowed range):
    from 0 (readahead off) a multiple would stay 0 for ever, and from a hand-set value outside
    the range a step could stop short of the range and write outside it."""

    factor: float
    low: int = 1
    high: int | None = None
    name: str = "max_step"

    def check(self, p: Proposal) -> Verdict:
        if p.value == p.current:
            return Verdict(self.name, "allow", p.value, "no change proposed")
        base = max(p.current, self.low, 1)
        if self.high is not None:
            base = min(base, self.high)
        origin = "" if base == p.current else \
            f" (measured from {base}, the allowed value nearest {p.current})"
        up = math.floor(base * self.factor)
        down = math.ceil(base / self.factor)
        if p.value > up:
            return Verdict(self.name, "clamp", up, f"{p.current} to {p.value} is more than "
                           f"{self.factor:g}x up: clamped to {up}{origin}")
        if p.value < down:
            return Verdict(self.name, "clamp", down, f"{p.current} to {p.value} is more than "
                           f"{self.factor:g}x down: clamped to {down}{origin}")
        return Verdict(self.name, "allow", p.value,
                       f"within {self.factor:g}x of {base}: [{down}, {up}]")


@dataclass(frozen=True)
class MaxChangesPerHour:
    """At most ``limit`` writes per target in any sliding window of an hour: a write exactly
    an hour old no longer counts."""

    limit: int
    name: str = "max_changes_per_hour"

    def check(self, p: Proposal) -> Verdict:
        if p.value == p.current:
            return Verdict(self.name, "allow", p.value, "no change proposed")
        recent = sorted(t for t in p.recent_changes if p.now - t < RECENT_S)
        if len(recent) >= self.limit:
            # Allowed again once enough of the oldest writes have left the window.
            wait = recent[len(recent) - self.limit] + RECENT_S - p.now
            return Verdict(self.name, "deny", p.current,
                           f"{len(recent)} of {self.limit} changes in the last hour; "
                           f"next allowed in {wait:.1f}s")
        return Verdict(self.name, "allow", p.value,
                       f"{len(recent)} of {self.limit} changes in the last hour")


@dataclass(frozen=True)
class PressureGuard:
    """Hands off while the system is thrashing: no change while PSI "full avg10" memory or
    I/O pressure (percent of time every task stalled) is at or above its threshold. Pressure
    that is unknown (no /proc/pressure, kernel without CONFIG_PSI) does not block."""

    memory_full_avg10: float
    io_full_avg10: float
    name: str = "pressure"

    def check(self, p: Proposal) -> Verdict:
        if p.value == p.current:
            return Verdict(self.name, "allow", p.value, "no change proposed")
        over, seen = [], []
        for key, label, limit in (("memory_full_avg10", "memory", self.memory_full_avg10),
                                  ("io_full_avg10", "io", self.io_full_avg10)):
            v = p.pressure.get(key, math.nan)
            if math.isnan(v):
                seen.append(f"{label} full avg10 unknown")
            elif v >= limit:
                over.append(f"{label} full avg10 {v:.1f}% >= {limit:g}%")
            else:
                seen.append(f"{label} full avg10 {v:.1f}% < {limit:g}%")
        if over:
            return Verdict(self.name, "deny", p.current, f"hands off: {', '.join(over)}")
        return Verdict(self.name, "allow", p.value, ", ".join(seen))
