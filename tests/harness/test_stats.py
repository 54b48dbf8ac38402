"""How recsec reads its numbers (harness.stats, harness.significance): intervals over seeds, a
single seed's bootstrap over its units, paired tests, Holm's correction over a table, ranks
with ties, and the per-unit values a cell keeps (harness.units)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsec.harness import report, significance, stats
from recsec.harness.units import PerUnit, per_user, split_measured, statistic_over


def test_a_mean_over_seeds_gets_a_t_interval_that_widens_with_the_spread():
    tight = stats.interval([0.50, 0.51, 0.52])
    loose = stats.interval([0.40, 0.51, 0.62])
    assert tight.method == stats.METHOD_T and tight.n == 3
    assert tight.low < 0.51 < tight.high and loose.low < tight.low and loose.high > tight.high
    assert stats.interval([0.3, 0.3]).low == stats.interval([0.3, 0.3]).high == 0.3  # no spread, no width


def test_one_seed_is_given_a_bootstrap_interval_over_its_units_that_is_the_same_every_time():
    values = np.random.default_rng(0).random(400)
    units = per_user(np.arange(400), values)
    first, second = stats.interval([units.value()], units), stats.interval([units.value()], units)
    assert first == second and first.method == stats.METHOD_BOOTSTRAP
    assert first.low < values.mean() < first.high and first.high - first.low < 0.1
    assert "(1 seed)" in first.text()
    without_units = stats.interval([0.4])
    assert without_units.method == stats.METHOD_NONE and without_units.text() == "0.4000"


def test_a_roc_auc_is_bootstrapped_from_its_scores_and_labels():
    rng = np.random.default_rng(1)
    labels = (rng.random(600) < 0.5).astype(int)
    scores = labels + rng.normal(0, 1.0, 600)  # separable, not perfectly
    units = statistic_over("user", np.arange(600), "roc_auc", score=scores, label=labels)
    auc = units.value()
    got = stats.interval([auc], units)
    assert 0.6 < auc < 0.9 and got.low < auc < got.high


def test_paired_over_shared_seeds_a_consistent_gap_is_significant_and_noise_is_not():
    better = pd.Series({0: 0.60, 1: 0.63, 2: 0.58, 3: 0.61})
    worse = better - pd.Series({0: 0.10, 1: 0.11, 2: 0.09, 3: 0.10})
    assert stats.compare(better, worse).p < 0.001
    noise = pd.Series({0: 0.62, 1: 0.58, 2: 0.61, 3: 0.57})
    assert stats.compare(better, noise).p > 0.2
    unpaired = stats.compare(pd.Series({0: 0.6, 1: 0.62}), pd.Series({5: 0.4, 6: 0.41}))
    assert unpaired.method.startswith("Welch")
    one = stats.compare(pd.Series({0: 0.6}), pd.Series({0: 0.4}))
    assert not one.tested and math.isclose(one.difference, 0.2)


def test_rows_equal_at_every_seed_are_not_a_comparison_and_do_not_widen_the_correction():
    same = pd.Series({0: 0.3, 1: 0.31, 2: 0.29})
    assert not stats.compare(same, same.copy()).tested
    counted = stats.compare(pd.Series({0: 15.0, 1: 15.0}), pd.Series({0: 0.0, 1: 0.0}))  # fake users: 15 vs none
    assert counted.p == 0.0 and counted.difference == 15.0
    tests = [stats.compare(pd.Series({0: .9, 1: .92, 2: .91}), pd.Series({0: .5, 1: .51, 2: .52})),
             stats.compare(same, same.copy())]
    adjusted = stats.adjust(tests)
    assert adjusted[0].p_adjusted == pytest.approx(adjusted[0].p)  # a family of one tested comparison
    assert math.isnan(adjusted[1].p_adjusted) and not adjusted[1].significant


def test_holm_multiplies_the_smallest_p_by_the_number_of_tests():
    made = [stats.Comparison(0.1, 0, 0.2, p, 5, "paired t over seeds") for p in (0.01, 0.02, 0.04)]
    adjusted = [c.p_adjusted for c in stats.adjust(made)]
    assert adjusted == pytest.approx([0.03, 0.04, 0.04])
    assert [c.significant for c in stats.adjust(made)] == [True, True, True]
    made.append(stats.Comparison(0.1, 0, 0.2, 0.03, 5, "paired t over seeds"))  # a 4th test raises the bar
    assert stats.adjust(made)[0].p_adjusted == pytest.approx(0.04)
    assert not stats.adjust(made)[2].significant


def test_entries_no_test_separates_share_a_rank():
    means = {"strong": 0.3, "mild": 0.29, "none": 0.0}
    beats = {("strong", "none"), ("mild", "none")}  # strong and mild: not separated
    assert stats.ranks_with_ties(means, beats) == {"strong": 1, "mild": 1, "none": 3}


def test_a_pivot_marks_a_clear_difference_and_leaves_noise_unmarked():
    rows = []
    for seed, (noise, other) in enumerate(((0.01, 0.02), (-0.02, 0.01), (0.015, -0.03), (-0.005, 0.0))):
        for attack, level in (("strong", 0.8 + other / 2), ("weak", 0.3 + noise), ("weak_too", 0.3 - noise + other)):
            rows.append({"tags.attack": attack, "tags.defense": "none", "tags.seed": str(seed),
                         "metrics.agr_at_10": level})
    table = report.pivot(pd.DataFrame(rows), "agr_at_10", "attack", "defense").set_index("attack")
    assert table.loc["strong", "row"] == "a"
    assert table.loc["strong", "none"].above == ("b", "c")
    assert table.loc["weak", "none"].above == () and table.loc["weak_too", "none"].above == ()
    assert str(table.loc["strong", "none"]).endswith("ᵇᶜ")


def test_the_within_seed_test_needs_the_same_units():
    a = per_user(np.arange(50), np.linspace(0, 1, 50))
    b = per_user(np.arange(50), np.linspace(0, 1, 50) - 0.1)
    p, n = stats.within_seed(a, b)
    assert p < 1e-6 and n == 50
    assert stats.within_seed(a, per_user(np.arange(1, 51), np.linspace(0, 1, 50))) is None  # other users


def test_a_grades_per_unit_values_become_its_numbers_and_survive_a_round_trip():
    measured = {"agr_at_10": per_user([3, 5, 9], [0.1, 0.2, 0.6]), "n_known_users": 3,
                "roc_auc": statistic_over("user", [1, 2, 3, 4], "roc_auc", score=[0.9, 0.8, 0.2, 0.1],
                                          label=[1, 1, 0, 0])}
    numbers, units = split_measured(measured)
    assert numbers == {"agr_at_10": pytest.approx(0.3), "n_known_users": 3, "roc_auc": 1.0}
    back = {name: PerUnit.from_dict(u.to_dict()) for name, u in units.items()}
    assert back["agr_at_10"].value() == pytest.approx(0.3) and back["roc_auc"].value() == 1.0
    assert back["agr_at_10"].digest == units["agr_at_10"].digest  # ids kept as their digest
    with pytest.raises(ValueError, match="unknown statistic"):
        PerUnit("user", np.arange(2), {"value": np.zeros(2)}, "median")


def test_estimates_show_marks_as_superscripts_and_flatten_for_csv():
    estimate = significance.Estimate(stats.Interval(0.5, 0.4, 0.6, 3, stats.METHOD_T), above=("a", "c"))
    assert str(estimate) == "0.5000 [0.4000, 0.6000] ᵃᶜ"
    flat = significance.flat_columns(pd.DataFrame({"agr": [estimate]}))
    assert list(flat.columns) == ["agr", "agr_low", "agr_high", "agr_n", "agr_above"]
    assert flat.iloc[0]["agr_above"] == "a c"
