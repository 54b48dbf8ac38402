"""Which numbers of a table are real: a table's cells grouped into its rows (each row's values
by seed), each shown as a mean with its interval, and the rows a table sets side by side
compared, with one correction over the whole table (harness.stats says which and why).

Tables hold `Estimate`s; Markdown shows one as `0.9306 [0.8551, 1.0061] ᵇ` (the superscript
letters name the rows it is significantly above), HTML as the same with a marked superscript,
CSV as separate columns.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable

import numpy as np
import pandas as pd

from recsec.harness import stats
from recsec.harness.units import PerUnit

_SUPERSCRIPTS = dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ"))
# Row labels: letters with a superscript form (Unicode has no superscript q), then pairs.
LETTERS = list(_SUPERSCRIPTS) + [a + b for a, b in itertools.product(_SUPERSCRIPTS, repeat=2)]


@dataclass(frozen=True)
class Estimate:
    """A table cell: a mean over seeds with its interval, and the labels of the rows it is
    significantly above."""

    interval: stats.Interval
    above: tuple[str, ...] = ()
    digits: int = 4
    note: str = ""  # shown after the value and its marks: a count, a flag

    @property
    def mean(self) -> float:
        return self.interval.mean

    def marks(self) -> str:
        if not self.above:
            return ""
        if all(len(label) == 1 for label in self.above):
            return " " + "".join(_SUPERSCRIPTS[label] for label in self.above)
        return " >" + ",".join(self.above)

    def __str__(self) -> str:
        return self.interval.text(self.digits) + self.marks() + self.note


@dataclass
class Row:
    """One row of a table in one column: its values by seed, and (when it is one cell) the units
    behind that cell's value."""

    seeds: pd.Series
    units: Callable[[], PerUnit | None] = lambda: None  # noqa: E731

    def interval(self) -> stats.Interval:
        return stats.interval(self.seeds, self.units() if len(self.seeds.dropna()) == 1 else None)


def rows_of(frame: pd.DataFrame, values: pd.Series, by: list[str], metric: str | None = None) -> dict[tuple, Row]:
    """Group `values` (one per cell of `frame`) into rows by the `by` columns: each row's values
    by seed (the mean of its cells at that seed, when other axes are pooled). `metric` names the
    per-unit values a one-cell row's interval may use (the frame's `units` column)."""
    work = frame[by].assign(_value=values.to_numpy(), _seed=frame["tags.seed"].astype(str),
                            _cell=range(len(frame)))
    work = work.dropna(subset=["_value"])
    # One groupby for every (row, seed) mean, then rows assembled in one pass: a leaderboard
    # groups thousands of cells this way many times.
    means = work.groupby(by + ["_seed"], sort=False, dropna=False)["_value"].mean()
    cells = work.groupby(by, sort=False, dropna=False)["_cell"].agg(["size", "first"])
    by_row: dict[tuple, dict[str, float]] = {}
    for key, value in means.items():
        by_row.setdefault(key[:-1], {})[key[-1]] = value
    out = {}
    for key, seeds in by_row.items():
        size, first = cells.loc[key if len(by) > 1 else key[0]]
        one_cell = size == 1 and metric is not None and "units" in frame
        out[key] = Row(pd.Series(seeds, dtype=float),
                       _units_getter(frame["units"].iloc[first], metric) if one_cell else _no_units)
    return out


def _no_units() -> None:
    return None


def _units_getter(units, metric: str) -> Callable[[], PerUnit | None]:
    """`units`: a cell's name -> PerUnit, or a function that loads them (an MLflow artifact)."""
    def get() -> PerUnit | None:
        loaded = units() if callable(units) else units
        return (loaded or {}).get(metric)
    return get


@dataclass
class Column:
    """A table's column: its rows (in table order) and the pairs of rows it compares."""

    name: str
    rows: dict[Hashable, Row]
    pairs: list[tuple[Hashable, Hashable]] = field(default_factory=list)
    digits: int = 4


def mark(columns: Iterable[Column], labels: dict[Hashable, str]) -> dict[str, dict[Hashable, Estimate]]:
    """Every column's estimates, each with the labels of the rows it is significantly above after
    one Holm correction over all the comparisons of all the columns."""
    columns = list(columns)
    tests = [(column.name, a, b, stats.compare(column.rows[a].seeds, column.rows[b].seeds))
             for column in columns for a, b in column.pairs if a in column.rows and b in column.rows]
    adjusted = stats.adjust([t[3] for t in tests])
    above: dict[tuple[str, Hashable], list[str]] = {}
    for (name, a, b, _), comparison in zip(tests, adjusted):
        if comparison.significant:
            winner, loser = (a, b) if comparison.difference > 0 else (b, a)
            above.setdefault((name, winner), []).append(labels[loser])
    out = {}
    for column in columns:
        out[column.name] = {
            key: Estimate(row.interval(), tuple(sorted(above.get((column.name, key), []), key=LETTERS.index)),
                          column.digits)
            for key, row in column.rows.items()}
    return out


def pairs_differing_in_one(keys: list[tuple]) -> list[tuple[tuple, tuple]]:
    """The pairs of row keys that differ in exactly one position: the comparisons a table with
    several axes per row makes (attacks under one defense, defenses against one attack)."""
    return [(a, b) for a, b in itertools.combinations(keys, 2)
            if sum(x != y for x, y in zip(a, b)) == 1]


def flat_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A table of Estimates as plain CSV columns: NAME (the mean), NAME_low, NAME_high, NAME_n,
    NAME_above (the rows it is significantly above)."""
    out = {}
    for name in table.columns:
        values = table[name]
        if any(isinstance(v, Estimate) for v in values):
            out[name] = [v.mean if isinstance(v, Estimate) else np.nan for v in values]
            out[f"{name}_low"] = [v.interval.low if isinstance(v, Estimate) else np.nan for v in values]
            out[f"{name}_high"] = [v.interval.high if isinstance(v, Estimate) else np.nan for v in values]
            out[f"{name}_n"] = [v.interval.n if isinstance(v, Estimate) else 0 for v in values]
            out[f"{name}_above"] = [" ".join(v.above) if isinstance(v, Estimate) else "" for v in values]
        else:
            out[name] = list(values)
    return pd.DataFrame(out, index=table.index)


def units_loader(raw: str | None) -> dict[str, PerUnit]:
    """A record's per-unit values from its JSON text (an MLflow artifact); empty without one."""
    if not raw:
        return {}
    return {name: PerUnit.from_dict(units) for name, units in json.loads(raw).get("units", {}).items()}
