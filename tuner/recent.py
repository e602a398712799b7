"""The model's scores over the last few ticks of one workload, averaged before deciding.

At a steady workload each tick is another noisy look at the same thing. On a stream at
readahead 2048-4096 the disk's request size moves 450-1000 KiB from one second to the next
(reclaim stalls, bursts), and in the ticks where it is small the model scored 256 above
4096 by 8-17 %: writes to 256 and back, with settle times of 5-10 s in the 10 s mix
(`bench/results/readahead-mix2-10s-r3-v11*`). The mean over a few ticks does not move
for one odd tick. It starts over when the workload moved (the loop says when:
mltune.loop.Agent._saw) or the value changed, and the first tick at a new value is left out (it
straddles the write), so phase changes and second steps are not slowed. A tick whose own
scores promise ``act_now`` or more (4 → 2048 on a new stream: 10x) is acted on alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mltune.policies.limits import gain_ratio

TICKS = 3  # ticks averaged at most
ACT_NOW = 2.0  # a tick's own predicted gain at which it is not averaged


@dataclass
class RecentScores:
    ticks: int = TICKS
    act_now: float = ACT_NOW
    _kept: dict[str, tuple[int, list[dict[int, float]]]] = field(default_factory=dict)

    def mean(self, target: str, current: int, scores: dict[int, float],
             moved: bool) -> tuple[dict[int, float], int]:
        """The scores to decide on, and how many ticks they are the mean of."""
        value, kept = self._kept.get(target, (None, []))
        if moved or value != current:
            self._kept[target] = (current, [])  # start over; this tick is a transition
            return scores, 1
        kept = [*kept, scores][-self.ticks:]
        self._kept[target] = (current, kept)
        best = max(scores, key=lambda v: scores[v])
        if len(kept) == 1 or gain_ratio(scores, best, current) >= self.act_now:
            return scores, 1
        # A candidate missing from an older tick (its candidate list changed) keeps only
        # the ticks that scored it.
        return {v: sum(k[v] for k in kept if v in k) / sum(v in k for k in kept)
                for v in scores}, len(kept)

    def forget(self, target: str) -> None:
        self._kept.pop(target, None)
