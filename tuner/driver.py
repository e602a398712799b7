"""The contract every driver follows, and the typed values that cross it.

A driver is one small class per knob. It discovers targets, observes them, reads the
current value, lists candidate values and applies a planned change. It never saves or
restores originals: the journal belongs to the loop (see :mod:`mltune.journal`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Target:
    """One knob instance, e.g. ``read_ahead_kb`` of ``loop3``."""

    driver: str
    name: str
    path: str  # relative to the root, e.g. "sys/block/loop3/queue/read_ahead_kb"
    owner: str  # directory whose removal means the target is gone


@dataclass(frozen=True)
class Observation:
    """What a driver saw of one target during one tick."""

    target: str
    time: float
    features: Mapping[str, float]
    source: str  # where the access-pattern features came from: "tracefs" or "proc"
    window_s: float = 0.0  # time spent in a sampling window (excluded from tick cost)
    active: bool = True  # False: the target did nothing this tick, nothing to judge from
    # The knob's value as read during this observation (None: not read). The loop takes it
    # instead of reading the knob again in the same tick: a sysfs open and read cost
    # ~50 us on a cold cache.
    current: int | None = None
    # The access-pattern sample caught nothing while the target was active (its disk
    # counters moved): the loop writes nothing on it (mltune.loop.Agent._decide).
    blind: bool = False


@dataclass(frozen=True)
class Change:
    """A planned write: computed first, written later (or never, in dry-run)."""

    driver: str
    target: str
    path: str
    old: str
    new: str
    expect: str  # what reading back must show (the kernel normalises some values)


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""
    targets: tuple[str, ...] = field(default_factory=tuple)


class Driver(Protocol):
    """What the loop needs from a driver."""

    name: str
    knob: str
    features: Sequence[str]  # everything observed (and audited)
    model_features: Sequence[str]  # the subset a model takes, in its input order

    def availability(self) -> Availability: ...

    def discover(self) -> list[Target]: ...

    def observe(self, targets: Sequence[Target]) -> dict[str, Observation]: ...

    def current(self, target: Target) -> int: ...

    def candidates(self, target: Target) -> tuple[int, ...]: ...

    def reward(self, o: Observation) -> float | None:
        """What a change should raise (higher is better), for the regression guard; None
        when this observation cannot tell."""
        ...

    def signature(self, o: Observation) -> tuple[float, ...] | None:
        """A few numbers in [0, 1] describing the workload, independent of the knob: the
        guard compares rewards only while it stays put, and a part that moves between two
        ticks brings the next one forward. A part this observation cannot tell is NaN;
        None: nothing is known."""
        ...

    def plan(self, target: Target, value: int) -> Change: ...

    def apply(self, change: Change) -> str: ...

    def close(self) -> None: ...
