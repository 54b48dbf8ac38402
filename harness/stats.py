"""How recsec reads its numbers: the one place that says which interval, which test and which
correction every report, leaderboard and document uses, and why.

**The replication unit is the seed.** A seed redraws the split, retrains the target and reruns
the attack with its own randomness (a clone's initialisation, its negatives, a surrogate's
synthetic data). Two attacks compared on one seed are two trained objects graded on the same
users: the users of one seed share one clone, so they are not independent draws of the attack,
and a test over them (Wilcoxon or a sign-flip test over users, as Elliot and ranx run over
queries) answers "did this clone beat that clone on these users", not "does attack A beat
attack B". So:

- **Interval of a mean over S >= 2 seeds**: Student's t over the seeds' values (each seed's value
  is the metric its cell logged: the mean over that seed's units), `scipy.stats.t`. A bootstrap
  over 2-5 seeds undercovers (with 5 seeds its percentile interval is about 0.6 times as wide as
  the t interval, which is exact for normal seed values); t is wide when seeds are few, and that
  is the honest answer.
- **Interval with one seed**: a bootstrap over that seed's units (`scipy.stats.bootstrap`; BCa
  for a mean, percentile for a statistic that is not one, such as a ROC AUC), shown with
  `(1 seed)`: it measures which users happened to be graded, not how the attack varies. With
  fewer than 10 units, no interval.
- **A vs B**: a paired t-test over the seeds both have (`scipy.stats.ttest_rel`; each seed's two
  cells share the split, the target and the graded units). Cells with no common seeds: Welch's
  t-test (`scipy.stats.ttest_ind`). With fewer than two values a side, no test. Rows equal at
  every seed are not a comparison (nothing is tested); the same non-zero gap at every seed is
  certain (p = 0; under Holm it costs the other tests nothing). Rank tests and
  sign-flip permutation tests over seeds are not used: with 5 pairs their smallest two-sided
  p-value is 1/16, so they could never mark anything.
- **Many comparisons in one table**: Holm's step-down correction over every comparison the table
  makes (`statsmodels.stats.multitest.multipletests`), at a family-wise error of 5%. A table
  marks only the comparisons that survive it.

Everything here is a thin layer over SciPy and statsmodels; nothing is hand-written statistics.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests

from recsec.harness.units import STATISTICS, PerUnit

CONFIDENCE = 0.95
ALPHA = 0.05
CORRECTION = "holm"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # a report is the same every time it is built
MIN_UNITS = 10  # fewer units than this (one target item in two retrainings) make no interval

METHOD_T = "t over seeds"
METHOD_BOOTSTRAP = "bootstrap over units (1 seed)"
METHOD_NONE = "1 value"

LEGEND = ("mean [95% interval] over seeds; a superscript letter names a row the value is significantly above "
          "(paired t over seeds, Holm over the table). See harness/stats.py.")
READING = (
    "Intervals are 95%: Student's t over seeds, or with one seed a bootstrap over its graded units "
    "(marked 1 seed). A superscript letter after a value names a row it is significantly above: a paired "
    "t-test over the seeds both rows ran, Holm-corrected over every comparison in the table (5% "
    "family-wise). The seed is the unit of replication: see harness/stats.py."
)


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its 95% interval; `n` seeds; `method` says how the interval was made."""

    mean: float
    low: float
    high: float
    n: int
    method: str

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def text(self, digits: int = 4) -> str:
        if math.isnan(self.mean):
            return ""
        if not self.has_interval:
            return f"{self.mean:.{digits}f}"
        one_seed = " (1 seed)" if self.method == METHOD_BOOTSTRAP else ""
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]{one_seed}"


@dataclass(frozen=True)
class Comparison:
    """A minus B: the mean difference with its 95% interval, the test's p-value (raw, and
    adjusted over the table's comparisons once `adjust` has run) and how many pairs it used."""

    difference: float
    low: float
    high: float
    p: float
    n: int
    method: str
    p_adjusted: float = float("nan")

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p)

    @property
    def significant(self) -> bool:
        return not math.isnan(self.p_adjusted) and self.p_adjusted < ALPHA


def interval(per_seed, units: PerUnit | None = None) -> Interval:
    """The mean of `per_seed` (one value per seed, NaNs dropped) with its 95% interval; with a
    single seed, from `units` (that seed's per-unit values) when they are given."""
    values = np.asarray(pd.Series(per_seed, dtype=float).dropna(), dtype=float)
    n = len(values)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, METHOD_NONE)
    mean = float(values.mean())
    if n >= 2:
        sem = float(np.std(values, ddof=1) / np.sqrt(n))
        half = _t_quantile(n - 1) * sem
        return Interval(mean, mean - half, mean + half, n, METHOD_T)
    if units is not None and units.n >= MIN_UNITS:
        low, high = _bootstrap(units)
        return Interval(mean, low, high, 1, METHOD_BOOTSTRAP)
    return Interval(mean, float("nan"), float("nan"), 1, METHOD_NONE)


@functools.lru_cache(maxsize=64)
def _t_quantile(df: int) -> float:
    """Student's t quantile of the two-sided 95% interval (scipy.stats.t), once per df."""
    return float(scipy_stats.t.ppf((1 + CONFIDENCE) / 2, df))


def _bootstrap(units: PerUnit) -> tuple[float, float]:
    arrays = units.arrays()
    if units.statistic == "mean":
        values = arrays[0][~np.isnan(arrays[0])]
        if len(values) < 2 or np.ptp(values) == 0:
            return (float(values.mean()),) * 2 if len(values) else (float("nan"),) * 2
        result = scipy_stats.bootstrap((values,), np.mean, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                                       method="BCa", rng=np.random.default_rng(BOOTSTRAP_SEED))
    else:
        function = STATISTICS[units.statistic][1]
        with warnings.catch_warnings():  # a resample with one class has no AUC: dropped as NaN
            warnings.simplefilter("ignore")
            result = scipy_stats.bootstrap(arrays, function, paired=True, vectorized=False,
                                           confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                                           method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED))
    ci = result.confidence_interval
    return float(ci.low), float(ci.high)


def compare(a, b) -> Comparison:
    """Row A against row B, each a Series of per-seed values indexed by seed: paired over the
    seeds both have, else Welch's test; untested with fewer than two values a side."""
    a, b = pd.Series(a, dtype=float).dropna(), pd.Series(b, dtype=float).dropna()
    shared = a.index.intersection(b.index)
    if len(shared) >= 2:
        x, y = a.loc[shared].to_numpy(), b.loc[shared].to_numpy()
        # Float noise is not a difference: the same value reached by two code paths.
        differences = np.where(np.isclose(x, y, rtol=1e-9, atol=1e-12), 0.0, x - y)
        if np.allclose(differences, differences[0], rtol=1e-9, atol=1e-12):
            # No spread, so no t statistic. Equal at every seed (a target's own utility beside two
            # attacks on it): the rows do not differ in what the column measures, so nothing is
            # tested. The same non-zero gap at every seed (15 fake users against none) is no
            # accident: p = 0, which under Holm costs the table's other tests nothing.
            d = float(differences[0])
            if d == 0:
                return Comparison(0.0, 0.0, 0.0, float("nan"), len(shared), "identical at every seed")
            return Comparison(d, d, d, 0.0, len(shared), "the same difference at every seed")
        result = scipy_stats.ttest_rel(x, y)
        ci = result.confidence_interval(CONFIDENCE)
        return Comparison(float(differences.mean()), float(ci.low), float(ci.high), float(result.pvalue),
                          len(shared), "paired t over seeds")
    if len(a) >= 2 and len(b) >= 2:
        result = scipy_stats.ttest_ind(a.to_numpy(), b.to_numpy(), equal_var=False)
        ci = result.confidence_interval(CONFIDENCE)
        return Comparison(float(a.mean() - b.mean()), float(ci.low), float(ci.high), float(result.pvalue),
                          min(len(a), len(b)), "Welch t (no shared seeds)")
    d = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
    return Comparison(d, float("nan"), float("nan"), float("nan"), min(len(a), len(b)), "not tested (1 seed)")


def adjust(comparisons: list[Comparison]) -> list[Comparison]:
    """The same comparisons with Holm-adjusted p-values over the tested ones (a table's family)."""
    tested = [i for i, c in enumerate(comparisons) if c.tested]
    out = list(comparisons)
    if tested:
        with _without_collection():
            _, adjusted, _, _ = multipletests([comparisons[i].p for i in tested], alpha=ALPHA, method=CORRECTION)
        for i, p in zip(tested, adjusted):
            out[i] = _with_adjusted(comparisons[i], float(p))
    return out


@contextlib.contextmanager
def _without_collection():
    """statsmodels' Holm ends in a `gc.collect()` (multipletests, method "holm"): 0.4 s in a
    process that holds MLflow's and torch's objects, and a leaderboard corrects dozens of tables.
    For that call only, a collection is a no-op; the numbers are statsmodels' own."""
    real = gc.collect
    gc.collect = lambda *args: 0
    try:
        yield
    finally:
        gc.collect = real


def _with_adjusted(c: Comparison, p: float) -> Comparison:
    return Comparison(c.difference, c.low, c.high, c.p, c.n, c.method, p)


def within_seed(a: PerUnit, b: PerUnit) -> tuple[float, int] | None:
    """One seed's two cells over their shared units: Wilcoxon's signed-rank p-value and the number
    of units (None when the units differ or are not means). Conditional on that seed's trained
    models: shown beside the seed-level test in `report --compare`, never used to mark a table."""
    if a.digest != b.digest or a.statistic != "mean" or b.statistic != "mean" or a.n != b.n:
        return None
    x, y = a.arrays()[0], b.arrays()[0]
    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.sum() < 2 or np.all(x[keep] == y[keep]):
        return (1.0, int(keep.sum())) if keep.sum() >= 2 else None
    return float(scipy_stats.wilcoxon(x[keep], y[keep]).pvalue), int(keep.sum())


def ranks_with_ties(means: dict, beats: set[tuple]) -> dict:
    """Competition ranks (1 is best) where an entry's rank is 1 + the number of entries
    significantly above it: entries no test separates share a rank. `beats`: (winner, loser)."""
    return {key: 1 + sum((other, key) in beats for other in means if other != key) for key in means}
