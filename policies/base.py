"""What every policy receives and returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol


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
    name: str

    def check(self, p: Proposal) -> Verdict: ...
