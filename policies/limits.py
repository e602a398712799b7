"""The policies every driver gets: allowed range, minimum predicted gain, cooldown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .base import Proposal, Verdict


@dataclass(frozen=True)
class AllowedRange:
    """Never write outside [low, high]; a value outside is clamped to the nearest bound."""

    low: int
    high: int
    name: str = "range"

    def check(self, p: Proposal) -> Verdict:
        if p.value < self.low:
            return Verdict(self.name, "clamp", self.low, f"{p.value} below minimum {self.low}")
        if p.value > self.high:
            return Verdict(self.name, "clamp", self.high, f"{p.value} above maximum {self.high}")
        return Verdict(self.name, "allow", p.value, f"within [{self.low}, {self.high}]")


@dataclass(frozen=True)
class MinGain:
    """Hysteresis: change only if the model predicts a gain of at least ``gain`` (a fraction
    of the best throughput) over keeping the current value, so noise does not flap the knob."""

    gain: float
    name: str = "min_gain"

    def check(self, p: Proposal) -> Verdict:
        if p.value == p.current:
            return Verdict(self.name, "allow", p.value, "no change proposed")
        # A value that is not a candidate (current set by hand, or a proposal clamped by the
        # range policy to a bound between candidates) is judged by the nearest candidate.
        delta = _nearest_score(p.scores, p.value) - _nearest_score(p.scores, p.current)
        if delta < self.gain:
            return Verdict(self.name, "deny", p.current,
                           f"predicted gain {delta:+.3f} < {self.gain:.3f}")
        return Verdict(self.name, "allow", p.value, f"predicted gain {delta:+.3f}")


def _nearest_score(scores: Mapping[int, float], value: int) -> float:
    if value in scores:
        return scores[value]
    return scores[min(scores, key=lambda v: abs(v - value))]


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
