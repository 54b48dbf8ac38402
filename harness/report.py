"""Tables from MLflow: mean +- std over seeds, pivoted along any two axes."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from recsec import attacks
from recsec.harness.errors import RecsecError
from recsec.harness.families import Family, family_names, get_family
from recsec.harness.grid import all_axes, load_grid
from recsec.harness.plugins import load_plugins
from recsec.harness.tracking import CELL_HASH, FAMILY, runs_frame



def experiment_name(grid: str) -> str:
    """`grid` is a grid file (its `name` is used) or an experiment name."""
    path = Path(grid)
    return load_grid(path).name if path.suffix in (".yaml", ".yml") or path.is_file() else grid


def cell_frame(tracking_uri: str, grids: str | list[str] | None) -> pd.DataFrame:
    """The latest finished run of each cell of a grid, of several, or (None) of every experiment."""
    names = None if grids is None else [experiment_name(g) for g in ([grids] if isinstance(grids, str) else grids)]
    frame = runs_frame(tracking_uri, names, kind="cell")
    if frame.empty:
        where = ("any experiment" if names is None else f"MLflow experiment {names[0]!r}" if isinstance(grids, str)
                 else f"experiments {', '.join(names)}")
        raise RecsecError(f"no finished cells in {where} at {tracking_uri}")
    # A cell rerun with --fresh has several finished runs: the latest one counts.
    latest = frame.sort_values("start_time").drop_duplicates(["experiment", f"tags.{CELL_HASH}"], keep="last")
    latest = latest.reset_index(drop=True)
    return latest.assign(family=_families(latest))


def _families(frame: pd.DataFrame) -> pd.Series:
    """Each run's family: its `recsec.family` tag, or for runs logged before the tag existed,
    its attack's family in the registry ("unknown" for an attack no longer registered)."""
    tagged = frame.get(f"tags.{FAMILY}", pd.Series([None] * len(frame), index=frame.index))
    missing = tagged.isna()
    if missing.any():
        load_plugins()

        def family_of(name) -> str:
            try:
                return attacks.attack_class(str(name)).family
            except Exception:
                return "unknown"

        # The attack's name: its parameter, else its label without parameters ("pgd(eps=8)").
        names = frame.get("params.attack.name", pd.Series(index=frame.index, dtype=object))
        labels = frame.get("tags.attack", pd.Series(index=frame.index, dtype=object)).astype(str).str.split("(").str[0]
        tagged = tagged.where(~missing, names.fillna(labels).map(family_of))
    return tagged


def registered_families(frame: pd.DataFrame) -> list[Family]:
    """The registered families of these runs, in name order (runs of others are left out)."""
    load_plugins()  # a plugin's family reads its own runs
    known = set(family_names())
    families = frame["family"] if "family" in frame else _families(frame)
    return [get_family(name) for name in sorted(families.dropna().unique()) if name in known]


def natural_key(value) -> tuple:
    """Sort 'popular_mix(n=5)' before 'popular_mix(n=25)' and 0.1 before 0.25: digit runs
    compare as numbers."""
    parts = re.split(r"(\d+(?:\.\d+)?)", str(value))
    return tuple((0, float(p), "") if re.fullmatch(r"\d+(?:\.\d+)?", p) else (1, 0.0, p) for p in parts)


def aggregate(frame: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """mean, std (over seeds, ddof=1) and n of `metric` for each combination of the `by` axes."""
    column = f"metrics.{metric}"
    if column not in frame:
        known = sorted(c.removeprefix("metrics.") for c in frame if c.startswith("metrics."))
        raise RecsecError(f"no metric {metric!r} in these runs; metrics: {', '.join(known)}")
    for axis in by:
        if axis not in all_axes() + ("seed",):
            raise RecsecError(f"unknown axis {axis!r}; axes: {', '.join(all_axes() + ('seed',))}")
    keys = [f"tags.{axis}" for axis in by]
    grouped = frame.dropna(subset=[column]).groupby(keys, sort=True)[column]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    out.columns = by + ["mean", "std", "n"]
    order = sorted(range(len(out)), key=lambda i: tuple(natural_key(out.iloc[i][a]) for a in by))
    return out.iloc[order].reset_index(drop=True)


def pivot(frame: pd.DataFrame, metric: str, rows: str, cols: str) -> pd.DataFrame:
    """A rows x cols table of 'mean ± std' strings."""
    agg = aggregate(frame, metric, [rows, cols] if rows != cols else [rows])
    agg["value"] = [fmt(m, s) for m, s in zip(agg["mean"], agg["std"])]
    if rows == cols:
        return agg.set_index(rows)[["value"]].rename(columns={"value": metric})
    table = agg.pivot(index=rows, columns=cols, values="value").fillna("")
    table = table.loc[sorted(table.index, key=natural_key), sorted(table.columns, key=natural_key)]
    table.columns.name = None
    return table


def main_k(frame: pd.DataFrame) -> int:
    """The K the summary shows: the served list's length when agreement was measured there
    (stealing), else the largest measured K within it (extraction measures K <= 20 of 100);
    families without agreement, at the Ks their success was measured."""
    ks = sorted(int(c.split("_")[-1]) for c in frame if c.startswith("metrics.agr_at_"))
    if not ks:  # no agreement measured: the Ks at which the families' success was
        ks = sorted({k for family in registered_families(frame) for k in family.success.measured_ks(frame)})
    lengths = frame.get("tags.list_length")
    if lengths is not None and lengths.nunique() == 1:
        length = int(lengths.iloc[0])
        within = [k for k in ks if k <= length]
        return length if length in ks or not within else within[-1]
    return ks[len(ks) // 2] if ks else 50


def varying_axes(frame: pd.DataFrame) -> list[str]:
    """The axes (besides seed) that take more than one value in these runs; attack and defense
    always, so a summary never pools cells that differ in anything but the seed."""
    axes = [a for a in all_axes() if f"tags.{a}" in frame and frame[f"tags.{a}"].nunique() > 1]
    return [a for a in all_axes() if a in axes or a in ("attack", "defense")]


def summary(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """The end-of-run table: each family's summary columns at k (success first, then the
    target's utility: recall for general recommenders, next-item hit ratio for sequential ones),
    per combination of the grid's varying axes."""
    utility = "recall" if f"metrics.recall_at_{k}" in frame else "hr"
    metrics: list[str] = []
    for family in registered_families(frame):
        metrics += [m for m in family.summary_metrics(k, utility) if m not in metrics]
    if not any(f"metrics.{m}" in frame for m in metrics):
        raise RecsecError(f"the runs have none of {', '.join(metrics) or 'the summary metrics of a known family'}")
    by = varying_axes(frame)
    parts = []
    for metric in metrics:
        if f"metrics.{metric}" in frame:
            agg = aggregate(frame, metric, by)
            parts.append(agg.assign(**{metric: [fmt(m, s) for m, s in zip(agg["mean"], agg["std"])]})
                         .set_index(by)[[metric] + (["n"] if not parts else [])])
    table = pd.concat(parts, axis=1).rename(columns={"n": "seeds"}).fillna("")  # e.g. no served lists
    return table[[c for c in table.columns if c != "seeds"] + ["seeds"]].reset_index()


def fmt(mean: float, std: float) -> str:
    return f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"


def to_markdown(table: pd.DataFrame, index: bool = True) -> str:
    frame = table.reset_index() if index else table
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)
