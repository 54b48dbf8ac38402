"""`recsec report --compare A --compare B`: two named rows of a grid tested against each other.

Each row is a set of cells that differ only in their seed (`attack=ptq`, with `--where` for the
axes that still vary). The answer is the seed-level test every table uses (harness.stats), and,
for each seed, a Wilcoxon signed-rank test over the units both cells graded: conditional on that
seed's trained models, it says whether the two differ on those users, not whether the attacks do.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from recsec.harness import stats
from recsec.harness.errors import RecsecError
from recsec.harness.grid import all_axes
from recsec.harness.report import main_k, natural_key, registered_families, to_markdown


@dataclass
class Compared:
    metric: str
    a: str
    b: str
    seeds: pd.DataFrame  # seed, A, B, A - B, within-seed p, units
    a_interval: stats.Interval
    b_interval: stats.Interval
    comparison: stats.Comparison
    fixed: dict  # the axes both rows share


def compare_rows(frame: pd.DataFrame, a: str, b: str, metric: str | None = None) -> Compared:
    metric = metric or _success(frame)
    if f"metrics.{metric}" not in frame:
        known = sorted(c.removeprefix("metrics.") for c in frame if c.startswith("metrics."))
        raise RecsecError(f"no metric {metric!r} in these cells; metrics: {', '.join(known)}")
    cells_a, cells_b = _row(frame, a), _row(frame, b)
    values = {}
    for name, cells in (("A", cells_a), ("B", cells_b)):
        values[name] = cells.set_index(cells["tags.seed"].astype(str))[f"metrics.{metric}"].astype(float)
    shared = sorted(set(values["A"].index) & set(values["B"].index), key=natural_key)
    units = {name: dict(zip(cells["tags.seed"].astype(str), cells["units"])) if "units" in cells else {}
             for name, cells in (("A", cells_a), ("B", cells_b))}
    rows = []
    for seed in sorted(set(values["A"].index) | set(values["B"].index), key=natural_key):
        within = None
        if seed in shared:
            ua, ub = (_loaded(units[n].get(seed), metric) for n in ("A", "B"))
            within = stats.within_seed(ua, ub) if ua is not None and ub is not None else None
        va, vb = values["A"].get(seed), values["B"].get(seed)
        rows.append({"seed": seed, "A": va, "B": vb,
                     "A - B": va - vb if va is not None and vb is not None else None,
                     "within seed: Wilcoxon p": within[0] if within else None,
                     "units": within[1] if within else None})
    fixed = {axis: cells_a[f"tags.{axis}"].iloc[0] for axis in all_axes()
             if f"tags.{axis}" in cells_a and cells_a[f"tags.{axis}"].iloc[0] == cells_b[f"tags.{axis}"].iloc[0]}
    return Compared(metric, a, b, pd.DataFrame(rows), stats.interval(values["A"]), stats.interval(values["B"]),
                    stats.compare(values["A"], values["B"]), fixed)


def _success(frame: pd.DataFrame) -> str:
    families = registered_families(frame)
    if not families:
        raise RecsecError("these cells belong to no registered family: name the metric with --metric")
    k = main_k(frame)
    success = families[0].success.label(k)
    return success if f"metrics.{success}" in frame else families[0].headline_metric(k)


def _row(frame: pd.DataFrame, spec: str) -> pd.DataFrame:
    """The cells a `AXIS=VALUE[,AXIS=VALUE]` row names; they may differ only in their seed."""
    cells = frame
    for condition in spec.split(","):
        axis, sep, value = condition.strip().partition("=")
        if not sep or axis not in all_axes():
            raise RecsecError(f"--compare {spec!r}: expected AXIS=VALUE[,AXIS=VALUE] with axes {', '.join(all_axes())}")
        cells = cells[cells.get(f"tags.{axis}", pd.Series("", index=cells.index)).astype(str) == value]
    if cells.empty:
        raise RecsecError(f"--compare {spec!r}: no cell matches")
    varying = [a for a in all_axes() if f"tags.{a}" in cells and cells[f"tags.{a}"].nunique() > 1]
    if varying:
        axis = varying[0]
        values = ", ".join(sorted(cells[f"tags.{axis}"].astype(str).unique(), key=natural_key))
        raise RecsecError(f"--compare {spec!r} matches cells that differ in {axis} ({values}): "
                          f"add it to the row or narrow with --where {axis}=...")
    if cells["tags.seed"].duplicated().any():
        raise RecsecError(f"--compare {spec!r} matches cells of several grids: narrow with --grid")
    return cells


def _loaded(units, metric: str):
    loaded = units() if callable(units) else units
    return (loaded or {}).get(metric)


def render(result: Compared, fmt: str = "md") -> str:
    c = result.comparison
    if fmt == "csv":
        return result.seeds.to_csv(index=False)
    lines = [f"# {result.metric}: A = {result.a}  vs  B = {result.b}", ""]
    if result.fixed:
        lines += ["both rows: " + ", ".join(f"{k}={v}" for k, v in result.fixed.items()), ""]
    shown = result.seeds.copy()
    for column in ("A", "B", "A - B"):
        shown[column] = [f"{v:.4f}" if v is not None and v == v else "" for v in shown[column]]
    shown["within seed: Wilcoxon p"] = [f"{p:.2g}" if p is not None and p == p else ""
                                        for p in shown["within seed: Wilcoxon p"]]
    shown["units"] = [str(int(n)) if n is not None and n == n else "" for n in shown["units"]]
    lines += [to_markdown(shown, index=False), "",
              f"- A: {result.a_interval.text()} over {result.a_interval.n} seeds",
              f"- B: {result.b_interval.text()} over {result.b_interval.n} seeds"]
    if c.tested:
        verdict = "A > B" if c.p < stats.ALPHA and c.difference > 0 else "A < B" if c.p < stats.ALPHA else "no difference shown"
        lines.append(f"- A - B: {c.difference:.4f} [{c.low:.4f}, {c.high:.4f}], {c.method}, {c.n} pairs: "
                     f"p = {c.p:.3g} ({verdict} at 5%, one comparison: no correction)")
    else:
        lines.append(f"- A - B: {c.difference:.4f}; {c.method}")
    lines += ["", "The seed is the unit of replication (harness/stats.py). The within-seed Wilcoxon test is "
              "over the units both cells graded: conditional on that seed's trained models, it says whether "
              "the two differ on those users, not whether the attacks do."]
    return "\n".join(lines)

