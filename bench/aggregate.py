"""Aggregating repeated benchmark rounds: pure functions on plain numbers, no I/O.

On a shared VM one run per regime cannot separate a regime's effect from host noise (static
figures move by up to 2x between runs). ``bench/readahead.py --repeat N`` therefore runs every
regime N times, interleaved: each round runs all regimes once, in an order rotated from round
to round (:func:`round_order`), so a slow drift of the host hits every regime alike. This
module turns those rounds into

* per regime and phase: the median MB/s and its spread (min-max) over the rounds;
* the headline score: geometric mean over phases of (median MB/s / best static median MB/s);
* per-round scores: each round against that round's own statics, then their median and range;
* the oracle's choice: per phase, the static value with the best median.

Figures are indexed by phase *position* (a phase may repeat in a sequence). A regime that
failed in a round has ``None`` for that round.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import NamedTuple

Figures = Sequence[float]  # MB/s per phase position, in one round


class Spread(NamedTuple):
    """Median and range of one figure over the rounds in which it was measured."""

    median: float
    low: float
    high: float
    n: int


class RegimeSummary(NamedTuple):
    name: str
    phases: tuple[Spread, ...]  # per phase; empty if the regime ran in no round
    ratios: tuple[float, ...]  # median MB/s / best static median MB/s, per phase
    score: float | None  # geometric mean of ``ratios``: the headline figure
    round_scores: tuple[float | None, ...]  # per round, against that round's statics
    round_score: Spread | None  # over the rounds in which the regime ran


class Summary(NamedTuple):
    best: tuple[tuple[int, float], ...]  # per phase: (static value, its median MB/s)
    regimes: tuple[RegimeSummary, ...]


class AgentSummary(NamedTuple):
    """The agent over all rounds: the worst settle time, the median (and range) of its cost."""

    rounds: int
    settle_max_s: float  # over every phase of every round
    settle_by_phase_max_s: tuple[float, ...]
    cpu_percent: Spread | None
    median_tick_ms: Spread | None
    peak_rss_mb: Spread | None
    median_tick_cpu_ms: Spread | None = None  # CPU time per tick (wall time: median_tick_ms)
    early_ticks: int = 0  # ticks the watch ran early, all rounds


def spread(values: Sequence[float]) -> Spread | None:
    """Median, min and max; None for no values. With two rounds the median is their mean."""
    if not values:
        return None
    return Spread(statistics.median(values), min(values), max(values), len(values))


def phase_spreads(rounds: Sequence[Figures | None]) -> tuple[Spread, ...]:
    """Per phase position, the spread over the rounds that ran (``None`` rounds are skipped)."""
    ran = [r for r in rounds if r is not None]
    if not ran:
        return ()
    width = len(ran[0])
    if any(len(r) != width for r in ran):
        raise ValueError(f"rounds disagree on the number of phases: {[len(r) for r in ran]}")
    # A phase position always has >= 1 value here, so spread() cannot return None.
    return tuple(_need(spread([r[i] for r in ran])) for i in range(width))


def medians(rounds: Sequence[Figures | None]) -> tuple[float, ...]:
    return tuple(s.median for s in phase_spreads(rounds))


def best_static(figures: Mapping[int, Figures]) -> tuple[tuple[int, float], ...]:
    """Per phase position, (value, MB/s) of the static value with the highest figure.

    ``figures`` maps read_ahead_kb to its per-phase MB/s (one round's, or medians). A tie goes
    to the smaller value, so the choice does not depend on the order regimes ran in.
    """
    if not figures:
        raise ValueError("no static figures to choose from")
    by_value = sorted(figures.items())
    width = len(by_value[0][1])
    if any(len(f) != width for _, f in by_value):
        raise ValueError("static regimes disagree on the number of phases")
    best = []
    for i in range(width):
        value, mbps = by_value[0][0], by_value[0][1][i]
        for v, f in by_value[1:]:
            if f[i] > mbps:
                value, mbps = v, f[i]
        best.append((value, mbps))
    return tuple(best)


def oracle_values(statics: Mapping[int, Sequence[Figures]]) -> tuple[int, ...]:
    """What the oracle writes per phase: the static value with the best median so far.

    ``statics`` maps read_ahead_kb to its per-phase MB/s in every round measured so far.
    """
    return tuple(v for v, _ in best_static({v: medians(r) for v, r in statics.items() if r}))


def ratios(figures: Figures, best: Sequence[tuple[int, float]]) -> tuple[float, ...]:
    """MB/s over the best static MB/s, per phase; 0 where even the best read nothing."""
    if len(figures) != len(best):
        raise ValueError(f"{len(figures)} figures for {len(best)} phases")
    return tuple(f / b if b > 0 else 0.0 for f, (_, b) in zip(figures, best, strict=True))


def geomean(values: Sequence[float]) -> float:
    """Geometric mean; 0 if any value is 0 (a phase that read nothing sinks the score)."""
    if not values:
        raise ValueError("geometric mean of nothing")
    if min(values) <= 0:
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


def score(figures: Figures, best: Sequence[tuple[int, float]]) -> float:
    return geomean(ratios(figures, best))


def round_scores(regime: Sequence[Figures | None],
                 statics: Sequence[Mapping[int, Figures]]) -> tuple[float | None, ...]:
    """Per round: the regime against the best static of that same round; None where it failed."""
    if len(regime) != len(statics):
        raise ValueError(f"{len(regime)} rounds of the regime, {len(statics)} of statics")
    return tuple(None if figures is None else score(figures, best_static(round_statics))
                 for figures, round_statics in zip(regime, statics, strict=True))


def summarise(regimes: Mapping[str, Sequence[Figures | None]],
              static_values: Mapping[str, int]) -> Summary:
    """Aggregate every regime over the rounds.

    ``regimes`` maps a regime name to its per-phase MB/s in each round (None where it failed);
    ``static_values`` names the regimes that hold one value throughout (the sweep, the
    default, tuned's) and their value: these define "best static". Two names with one value
    carry the same figures (one measurement, reused).
    """
    missing = sorted(set(static_values) - set(regimes))
    if missing:
        raise ValueError(f"static regimes without figures: {', '.join(missing)}")
    rounds = {len(r) for r in regimes.values()}
    if len(rounds) != 1:
        raise ValueError(f"regimes disagree on the number of rounds: {sorted(rounds)}")
    n = rounds.pop()
    statics_by_round: list[dict[int, Figures]] = [{} for _ in range(n)]
    all_statics: dict[int, list[Figures]] = {}
    for name, value in static_values.items():
        for k, figures in enumerate(regimes[name]):
            if figures is None:
                raise ValueError(f"static regime {name} has no figures in round {k + 1}")
            statics_by_round[k][value] = figures
    for per_round in statics_by_round:
        for value, figures in per_round.items():
            all_statics.setdefault(value, []).append(figures)
    best = best_static({v: medians(r) for v, r in all_statics.items()})
    out = []
    for name, per_round in regimes.items():
        spreads = phase_spreads(per_round)
        rel = ratios([s.median for s in spreads], best) if spreads else ()
        by_round = round_scores(per_round, statics_by_round)
        out.append(RegimeSummary(
            name, spreads, rel, geomean(rel) if rel else None, by_round,
            spread([s for s in by_round if s is not None])))
    return Summary(best, tuple(out))


def summarise_agent(settle: Sequence[Sequence[float]], cpu: Sequence[float | None],
                    tick: Sequence[float | None], rss: Sequence[float | None],
                    tick_cpu: Sequence[float | None] = (), early: Sequence[int] = ()
                    ) -> AgentSummary | None:
    """The agent's rounds, one entry per round it ran in; None if it ran in none.

    Settle time is the worst over all rounds (a target is "within 2 s", so one slow settle
    matters); costs are medians, with their range, since one tick or RSS reading per round
    is as noisy as the throughput.
    """
    if not settle:
        return None
    width = len(settle[0])
    if any(len(s) != width for s in settle):
        raise ValueError("agent rounds disagree on the number of phases")
    by_phase = tuple(max(s[i] for s in settle) for i in range(width))
    return AgentSummary(
        rounds=len(settle), settle_max_s=max(by_phase, default=0.0),
        settle_by_phase_max_s=by_phase,
        cpu_percent=spread([c for c in cpu if c is not None]),
        median_tick_ms=spread([t for t in tick if t is not None]),
        peak_rss_mb=spread([r for r in rss if r is not None]),
        median_tick_cpu_ms=spread([t for t in tick_cpu if t is not None]),
        early_ticks=sum(early))


def round_order(names: Sequence[str], index: int, rounds: int) -> list[str]:
    """The order regimes run in round ``index`` (0-based) of ``rounds``.

    Round 0 keeps the given order (with one round, the benchmark runs as it always did, and
    the oracle comes after the statics it picks from). Round k starts k/rounds of the way
    along the list, so each regime runs early in some rounds and late in others.
    """
    if not 0 <= index < rounds:
        raise ValueError(f"round {index} of {rounds}")
    shift = index * len(names) // rounds
    return [*names[shift:], *names[:shift]]


def _need(value: Spread | None) -> Spread:
    if value is None:
        raise ValueError("no values")
    return value
