"""What every policy receives and returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

# How far back ``Proposal.recent_changes`` needs to reach (the per-hour change limit).
RECENT_S = 3600.0


@dataclass(frozen=True)
class Proposal:
    """A model's recommendation for one target, before any policy has seen it."""

    driver: str
    target: str
    current: int
    value: int
    scores: Mapping[int, float]  # predicted fraction of best throughput per candidate
    now: float  # monotonic seconds
    last_change: float | None  # monotonic time of mltune's last write to this target
    # Monotonic times of mltune's writes to this target, newest last (at least the last
    # RECENT_S seconds; older entries may be present and are ignored).
    recent_changes: tuple[float, ...] = ()
    # System pressure in percent, e.g. "memory_full_avg10", "io_full_avg10" (PSI, see
    # Documentation/accounting/psi.rst); missing or NaN means unknown.
    pressure: Mapping[str, float] = field(default_factory=dict)
    mode: str = "recommendation"  # the target's mode (mltune.modes)
    judging: str = ""  # non-empty while the regression guard measures the last change
    vetoed: Mapping[int, str] = field(default_factory=dict)  # value → why it was reverted
    trial: tuple[int, int] | None = None  # (old, new) of the change being measured
    # (old, new) of a write to this target on the previous tick: this tick's window saw the
    # change happen, not the workload at the new value. ``settling_gain``: the throughput
    # gain that write was made for (predicted, or measured for a revert), e.g. 0.2 = +20 %.
    settling: tuple[int, int] | None = None
    settling_gain: float = 0.0
    # (old, new, gain) of the last change the regression guard measured as a gain at this
    # workload, e.g. (4096, 256, 0.16): 256 read 1.16x what 4096 did.
    measured: tuple[int, int, float] | None = None
    # (old, new) of mltune's last write to this target made on the model's word (not a
    # revert), at ``last_change``.
    last_step: tuple[int, int] | None = None
    # Monotonic time the target's access pattern was last seen to change (or first seen);
    # None: not known.
    workload_since: float | None = None


@dataclass(frozen=True)
class Verdict:
    policy: str
    action: Literal["allow", "clamp", "deny"]
    value: int
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"policy": self.policy, "action": self.action, "value": self.value,
                "reason": self.reason}


class Policy(Protocol):
    """``check`` judges one proposal. The loop asks only policies with a true class
    attribute ``judges_keep`` about keeping the current value (AllowedRange: a value set by
    hand outside the range is moved into it); every other policy has nothing to judge then,
    and keeping is what most ticks propose."""

    name: str

    def check(self, p: Proposal) -> Verdict: ...
