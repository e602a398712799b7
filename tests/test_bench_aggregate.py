"""The benchmark's aggregation of repeated rounds (bench/aggregate.py), on synthetic figures.

No root, no fio: the numbers are made up to reproduce what a noisy host does to single runs.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str, path: Path) -> ModuleType:
    """bench/ is a directory of scripts, not a package: load a script by its path. It is
    registered under its own name, as ``python bench/readahead.py`` would import it."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


agg = _load("aggregate", BENCH / "aggregate.py")
Spread = agg.Spread


# --------------------------------------------------------------------------- medians, spread


def test_spread_of_odd_and_even_counts():
    assert agg.spread([3.0, 1.0, 2.0]) == Spread(2.0, 1.0, 3.0, 3)
    assert agg.spread([1.0, 4.0]) == Spread(2.5, 1.0, 4.0, 2)  # two rounds: their mean
    assert agg.spread([]) is None


def test_phase_spreads_skip_a_round_in_which_the_regime_failed():
    rounds = [[100.0, 10.0], None, [300.0, 30.0], [200.0, 20.0]]
    assert agg.phase_spreads(rounds) == (Spread(200.0, 100.0, 300.0, 3),
                                         Spread(20.0, 10.0, 30.0, 3))
    assert agg.medians(rounds) == (200.0, 20.0)
    assert agg.phase_spreads([None, None]) == ()


def test_phase_spreads_refuse_rounds_of_different_lengths():
    with pytest.raises(ValueError, match="number of phases"):
        agg.phase_spreads([[1.0, 2.0], [1.0]])


# --------------------------------------------------------------------------- oracle selection


def test_best_static_per_phase_and_ties_to_the_smaller_value():
    figures = {4: [50.0, 60.0], 2048: [1500.0, 2.0], 1024: [1500.0, 3.0]}
    assert agg.best_static(figures) == ((1024, 1500.0), (4, 60.0))


def test_oracle_follows_the_median_not_one_lucky_round():
    # 4 KiB had one lucky round (100); 16 KiB is better in two rounds of three.
    statics = {4: [[10.0], [10.0], [100.0]], 16: [[20.0], [20.0], [20.0]]}
    assert agg.oracle_values(statics) == (16,)


def test_oracle_picks_from_values_measured_fewer_times_in_the_current_round():
    # Mid-round: 4 KiB already ran twice, 2048 only once so far.
    statics = {4: [[50.0, 100.0], [52.0, 90.0]], 2048: [[2.0, 1500.0]]}
    assert agg.oracle_values(statics) == (4, 2048)


# --------------------------------------------------------------------------- scores


def test_score_is_the_geometric_mean_of_ratios_to_the_best_static():
    best = ((4, 50.0), (2048, 1000.0))
    assert agg.ratios([25.0, 1000.0], best) == (0.5, 1.0)
    assert agg.score([25.0, 1000.0], best) == pytest.approx(math.sqrt(0.5))
    assert agg.score([0.0, 1000.0], best) == 0.0  # a phase that read nothing sinks it


def test_host_slowing_down_by_half_in_one_round_leaves_per_round_scores_alike():
    # Round 2 runs on a host at half speed: every figure halves, the per-round score does not.
    statics = [{4: [50.0, 100.0], 2048: [2.0, 1500.0]},
               {4: [25.0, 50.0], 2048: [1.0, 750.0]}]
    agent = [[45.0, 1350.0], [22.5, 675.0]]
    first, second = agg.round_scores(agent, statics)
    assert first == pytest.approx(0.9) and second == pytest.approx(0.9)


def test_round_scores_are_none_where_the_regime_failed():
    statics = [{4: [10.0]}, {4: [10.0]}]
    assert agg.round_scores([[5.0], None], statics) == (0.5, None)
    with pytest.raises(ValueError, match="rounds"):
        agg.round_scores([[5.0]], statics)


def test_summary_headline_compares_medians_per_phase():
    regimes = {
        "static-4": [[50.0, 100.0], [40.0, 90.0], [60.0, 80.0]],
        "static-2048": [[2.0, 1500.0], [1.0, 1000.0], [3.0, 2000.0]],
        "tuned": [[2.0, 1500.0], [1.0, 1000.0], [3.0, 2000.0]],  # reuses static-2048
        "mltune": [[45.0, 1200.0], None, [30.0, 1500.0]],
    }
    statics = {"static-4": 4, "static-2048": 2048, "tuned": 2048}
    summ = agg.summarise(regimes, statics)
    assert summ.best == ((4, 50.0), (2048, 1500.0))
    mltune = summ.regimes[-1]
    assert mltune.name == "mltune"
    # Medians over the two rounds it ran: 37.5 and 1350.
    assert mltune.ratios == pytest.approx((0.75, 0.9))
    assert mltune.score == pytest.approx(math.sqrt(0.75 * 0.9))
    # Per round: round 1 against (50, 1500); round 3 against (60, 2000).
    assert mltune.round_scores[0] == pytest.approx(math.sqrt(0.9 * 0.8))
    assert mltune.round_scores[1] is None
    assert mltune.round_scores[2] == pytest.approx(math.sqrt(0.5 * 0.75))
    assert mltune.round_score is not None and mltune.round_score.n == 2
    assert summ.regimes[1].score == pytest.approx(math.sqrt(2.0 / 50 * 1.0))


def test_summary_of_a_regime_that_never_ran():
    summ = agg.summarise({"static-4": [[10.0]], "mltune": [None]}, {"static-4": 4})
    assert summ.regimes[1].score is None and summ.regimes[1].round_score is None


def test_summary_refuses_a_static_regime_without_figures():
    with pytest.raises(ValueError, match="static regime static-4"):
        agg.summarise({"static-4": [None]}, {"static-4": 4})
    with pytest.raises(ValueError, match="without figures"):
        agg.summarise({"mltune": [[1.0]]}, {"static-4": 4})


# --------------------------------------------------------------------------- agent, order


def test_agent_summary_keeps_the_worst_settle_and_median_costs():
    a = agg.summarise_agent(settle=[[0.0, 1.2], [7.4, 0.6], [0.0, 0.9]],
                            cpu=[0.36, 0.43, None], tick=[3.2, 3.7, 4.1], rss=[72.0, 70.0, 71.0])
    assert a is not None
    assert a.settle_max_s == 7.4 and a.settle_by_phase_max_s == (7.4, 1.2)
    assert a.cpu_percent == Spread(pytest.approx(0.395), 0.36, 0.43, 2)
    assert a.median_tick_ms == Spread(3.7, 3.2, 4.1, 3)
    assert a.peak_rss_mb is not None and a.peak_rss_mb.median == 71.0
    assert agg.summarise_agent([], [], [], []) is None


def test_round_one_keeps_the_plan_order_so_the_oracle_follows_its_statics():
    names = ["static-4", "static-2048", "oracle", "mltune"]
    assert agg.round_order(names, 0, 3) == names


def test_rounds_rotate_so_each_regime_runs_early_and_late():
    names = [f"r{i}" for i in range(13)]  # the full sweep + default + oracle + mltune
    orders = [agg.round_order(names, k, 3) for k in range(3)]
    for order in orders:
        assert sorted(order) == sorted(names)
    positions = [[order.index(n) for order in orders] for n in names]
    assert all(len(set(p)) == 3 for p in positions)
    assert [order.index("r12") for order in orders] == [12, 8, 4]  # mltune: last, then earlier
    with pytest.raises(ValueError):
        agg.round_order(names, 3, 3)
