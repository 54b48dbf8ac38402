"""Tables of a grid's cells, from MLflow or from records (harness.record_file): each mean over
seeds with its 95% interval, and the rows a table compares marked where they differ
significantly (harness.significance, harness.stats)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from recsec import attacks
from recsec.harness.errors import RecsecError
from recsec.harness.families import Family, family_names, get_family
from recsec.harness.grid import all_axes, list_axes, load_grid
from recsec.harness.plugins import load_plugins
from recsec.harness import record_file, significance
from recsec.harness.run_tags import CELL_HASH, FAMILY
from recsec.harness.significance import Estimate
from recsec.harness.stats import LEGEND, READING  # noqa: F401  (what a table's marks mean, printed under it)



def experiment_name(grid: str) -> str:
    """`grid` is a grid file (its `name` is used) or an experiment name."""
    path = Path(grid)
    return load_grid(path).name if path.suffix in (".yaml", ".yml") or path.is_file() else grid


def cell_frame(tracking_uri: str, grids: str | list[str] | None) -> pd.DataFrame:
    """The latest finished run of each cell of a grid, of several, or (None) of every experiment.
    Each row's `units` loads its record's per-unit values from MLflow when a table needs them."""
    from recsec.harness.tracking import runs_frame

    names = None if grids is None else [experiment_name(g) for g in ([grids] if isinstance(grids, str) else grids)]
    frame = runs_frame(tracking_uri, names, kind="cell")
    if frame.empty:
        where = ("any experiment" if names is None else f"MLflow experiment {names[0]!r}" if isinstance(grids, str)
                 else f"experiments {', '.join(names)}")
        raise RecsecError(f"no finished cells in {where} at {tracking_uri}")
    # A cell rerun with --fresh has several finished runs: the latest one counts.
    latest = frame.sort_values("start_time").drop_duplicates(["experiment", f"tags.{CELL_HASH}"], keep="last")
    latest = latest.reset_index(drop=True)
    latest["units"] = [_lazy_units(tracking_uri, run_id) for run_id in latest["run_id"]]
    return latest.assign(family=_families(latest))


def records_cells(paths: list, grids: str | list[str] | None = None) -> pd.DataFrame:
    """The cells of record files (the latest record of each cell), optionally of some grids only:
    the same table `cell_frame` reads from MLflow."""
    records = record_file.read(paths)
    names = None if grids is None else {experiment_name(g) for g in ([grids] if isinstance(grids, str) else grids)}
    if names is not None:
        records = [r for r in records if r["grid"]["name"] in names]
    if not records:
        where = ", ".join(map(str, paths))
        raise RecsecError(f"no cell records{' of ' + ', '.join(sorted(names)) if names else ''} in {where}")
    frame = record_file.frame(records)
    return frame.drop_duplicates(["experiment", f"tags.{CELL_HASH}"], keep="last").reset_index(drop=True)


def _lazy_units(tracking_uri: str, run_id: str):
    """Loads a run's per-unit values from its record artifact once, when first asked."""
    loaded: list = []

    def load():
        if not loaded:
            from recsec.harness.tracking import cached_tracker

            loaded.append(significance.units_loader(cached_tracker(tracking_uri).artifact_text(run_id, record_file.ARTIFACT)))
        return loaded[0]
    return load


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


def where(frame: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """The cells whose AXIS label is VALUE for every `AXIS=VALUE` condition (tags are labels:
    `attack=ptq`, `target=bpr(epochs=30)`, `seed=0`)."""
    for condition in conditions:
        axis, sep, value = condition.partition("=")
        if not sep:
            raise RecsecError(f"--where {condition!r}: expected AXIS=VALUE")
        if axis not in all_axes() + tuple(EXTRA_AXES):
            raise RecsecError(f"--where {condition!r}: unknown axis {axis!r}; axes: {', '.join(all_axes() + tuple(EXTRA_AXES))}")
        column = frame.get(axis_column(axis), pd.Series("", index=frame.index)).astype(str)
        if not (column == value).any():
            seen = ", ".join(sorted(column.unique(), key=natural_key)[:12])
            raise RecsecError(f"--where {condition!r}: no cell has {axis} {value!r}; its values: {seen}")
        frame = frame[column == value]
    return frame


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


# Besides the grid's axes and the seed, a table may set cells of several grids side by side.
EXTRA_AXES = {"seed": "tags.seed", "grid": "tags.recsec.grid"}


def axis_column(axis: str) -> str:
    return EXTRA_AXES.get(axis, f"tags.{axis}")


def _check(frame: pd.DataFrame, metric: str, by: list[str]) -> str:
    column = f"metrics.{metric}"
    if column not in frame:
        known = sorted(c.removeprefix("metrics.") for c in frame if c.startswith("metrics."))
        raise RecsecError(f"no metric {metric!r} in these runs; metrics: {', '.join(known)}")
    for axis in by:
        if axis not in all_axes() + tuple(EXTRA_AXES):
            raise RecsecError(f"unknown axis {axis!r}; axes: {', '.join(all_axes() + tuple(EXTRA_AXES))}")
    return column


def _rows(frame: pd.DataFrame, metric: str, by: list[str]) -> dict[tuple, significance.Row]:
    """`metric`'s rows by the `by` axes, in natural order of their labels."""
    column = _check(frame, metric, by)
    rows = significance.rows_of(frame, frame[column], [axis_column(axis) for axis in by], metric)
    return dict(sorted(rows.items(), key=lambda kv: tuple(natural_key(v) for v in kv[0])))


def aggregate(frame: pd.DataFrame, metric: str, by: list[str]) -> pd.DataFrame:
    """For each combination of the `by` axes: the mean over seeds, its std and 95% interval
    (`low`, `high`, harness.stats), and `n`, the seeds."""
    out = []
    for key, row in _rows(frame, metric, by).items():
        interval = row.interval()
        values = row.seeds.dropna()
        out.append((*key, interval.mean, values.std() if len(values) > 1 else float("nan"), interval.low,
                    interval.high, interval.n, interval.method))
    return pd.DataFrame(out, columns=by + ["mean", "std", "low", "high", "n", "interval"])


def pivot(frame: pd.DataFrame, metric: str, rows: str | list[str], cols: str, digits: int = 4,
          versus: str | None = None, order: list[str] | None = None,
          within: list[str] | None = None) -> pd.DataFrame:
    """A rows x cols table of Estimates (a column per row axis after the rows' letters); within
    each column the rows are compared, Holm over the table, and each value names the rows it is
    significantly above. Which rows are compared: every pair; or each with the `versus` row only
    (fewer comparisons, more power); or, with several row axes, the pairs that share the
    `within` axes (attacks against the same target)."""
    row_axes = [rows] if isinstance(rows, str) else list(rows)
    if cols in row_axes:
        return metric_table(frame, [metric], row_axes, digits, versus, order, within)
    groups = _rows(frame, metric, row_axes + [cols])
    col_values = sorted({key[-1] for key in groups}, key=natural_key)
    columns = {str(col): {key[:-1]: row for key, row in groups.items() if key[-1] == col} for col in col_values}
    return _compared(columns, row_axes, digits, versus, order, within)


ROW_JOIN = " / "  # a row's label over several axes, as `versus` and `order` name it: "ptd / pop"


def pivot_long(frame: pd.DataFrame, metric: str, rows: str, cols: str, versus: str | None = None) -> pd.DataFrame:
    """`pivot` as one line per (row, column) for CSV: the mean, its interval and seeds, how the
    interval was made, and the rows of that column it is significantly above."""
    table = pivot(frame, metric, rows, cols, versus=versus)
    labels = dict(zip(table["row"], table[rows])) if "row" in table else {}
    out = []
    for _, line in table.iterrows():
        for col in table.columns:
            value = line[col]
            if isinstance(value, Estimate):
                i = value.interval
                out.append({rows: line[rows], **({cols: col} if cols != rows else {}), "mean": i.mean, "low": i.low,
                            "high": i.high, "n": i.n, "interval": i.method,
                            "above": " ".join(str(labels.get(a, a)) for a in value.above)})
    return pd.DataFrame(out)


def metric_table(frame: pd.DataFrame, metrics: list[str], rows: str | list[str], digits: int = 4,
                 versus: str | None = None, order: list[str] | None = None,
                 within: list[str] | None = None) -> pd.DataFrame:
    """One column per metric, one row per value of the `rows` axes (other axes pooled per seed),
    compared within each column as `pivot` does."""
    row_axes = [rows] if isinstance(rows, str) else list(rows)
    columns = {metric: _rows(frame, metric, row_axes) for metric in metrics}
    return _compared(columns, row_axes, digits, versus, order, within)


def _compared(columns: dict[str, dict], row_axes: list[str], digits: int, versus: str | None = None,
              order: list[str] | None = None, within: list[str] | None = None) -> pd.DataFrame:
    """Columns of rows (key tuple -> significance.Row), the rows compared within each column as
    `pivot` says, Holm over the whole table. Rows in natural order, or those `order` names first."""
    def label(key: tuple) -> str:
        return ROW_JOIN.join(map(str, key))

    rank = {str(v): i for i, v in enumerate(order or [])}
    keys = sorted({key for members in columns.values() for key in members},
                  key=lambda k: (rank.get(label(k), len(rank)), tuple(map(natural_key, k))))
    by_label = {label(k): k for k in keys}
    if versus is not None and versus not in by_label:
        raise RecsecError(f"--versus {versus!r}: no such row; rows: {', '.join(by_label)}")
    unknown = [a for a in (within or []) if a not in row_axes]
    if unknown:
        raise RecsecError(f"within {unknown[0]!r}: not one of the row axes {', '.join(row_axes)}")
    if versus is not None:
        pairs = [(k, by_label[versus]) for k in keys if k != by_label[versus]]
    else:
        shared = [row_axes.index(a) for a in within or []]
        pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1:] if all(a[j] == b[j] for j in shared)]
    labels = dict(zip(keys, significance.LETTERS))
    marked = significance.mark(
        [significance.Column(name, members, pairs, digits) for name, members in columns.items()], labels)
    table = pd.DataFrame([dict(zip(row_axes, key)) for key in keys], columns=row_axes)
    for name, estimates in marked.items():
        table[name] = [estimates.get(key, "") for key in keys]
    if len(keys) > 1:
        table.insert(0, "row", [labels[k] for k in keys])
    return table


def main_k(frame: pd.DataFrame) -> int:
    """The K the summary shows: of the Ks at which the families' success was measured, the
    length of the lists served to the attacker when it is one (a threat model's `list_axis`),
    else the largest within it (extraction measures K <= 20 of 100); without a served length,
    the middle one."""
    ks = sorted({k for family in registered_families(frame) for k in family.success.measured_ks(frame)})
    lengths = next((frame[f"tags.{a}"] for a in list_axes() if f"tags.{a}" in frame), None)
    if lengths is not None and lengths.nunique() == 1:
        length = int(lengths.iloc[0])
        within = [k for k in ks if k <= length]
        return length if length in ks or not within else within[-1]
    return ks[len(ks) // 2] if ks else 50


def pooled_note(frame: pd.DataFrame, shown: list[str]) -> str:
    """What a table pools: the axes that vary in its cells but are neither its rows nor its
    columns (each seed's cells are averaged over them), as a line to print under it."""
    pooled = [f"{a} ({frame[f'tags.{a}'].nunique()} values)" for a in all_axes()
              if a not in shown and f"tags.{a}" in frame and frame[f"tags.{a}"].nunique() > 1]
    return f"Each seed's value averages its cells over {', '.join(pooled)}: add --where to keep one." if pooled else ""


def varying_axes(frame: pd.DataFrame) -> list[str]:
    """The axes (besides seed) that take more than one value in these runs; attack and defense
    always, so a summary never pools cells that differ in anything but the seed."""
    axes = [a for a in all_axes() if f"tags.{a}" in frame and frame[f"tags.{a}"].nunique() > 1]
    return [a for a in all_axes() if a in axes or a in ("attack", "defense")]


def summary(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """The end-of-run table: each family's summary columns at k (success first, then the
    target's utility: recall for general recommenders, next-item hit ratio for sequential ones),
    per combination of the grid's varying axes, each a mean over seeds with its interval. Rows
    that differ in one axis only (two attacks under one defense, say) are compared, and each value
    names the rows it is significantly above (Holm over the table)."""
    utility = "recall" if f"metrics.recall_at_{k}" in frame else "hr"
    metrics: list[str] = []
    for family in registered_families(frame):
        metrics += [m for m in family.summary_metrics(k, utility) if m not in metrics]
    metrics = [m for m in metrics if f"metrics.{m}" in frame]
    if not metrics:
        raise RecsecError("the runs have none of the summary metrics of a known family")
    by = varying_axes(frame)
    per_metric = {metric: _rows(frame, metric, by) for metric in metrics}
    keys = sorted({key for rows in per_metric.values() for key in rows}, key=lambda key: tuple(map(natural_key, key)))
    labels = dict(zip(keys, significance.LETTERS))
    pairs = significance.pairs_differing_in_one(keys)
    marked = significance.mark([significance.Column(metric, rows, pairs) for metric, rows in per_metric.items()], labels)
    table = pd.DataFrame([dict(zip(by, key)) for key in keys])
    for metric in metrics:
        table[metric] = [marked[metric].get(key, "") for key in keys]
    table["seeds"] = [max(len(per_metric[m][key].seeds.dropna()) for m in metrics if key in per_metric[m])
                      for key in keys]
    if len(keys) > 1:
        table.insert(0, "row", [labels[key] for key in keys])
    return table


def to_csv(table: pd.DataFrame, index: bool = False) -> str:
    """A table of Estimates as CSV: each estimate's mean, interval, seeds and marks in columns."""
    frame = table.reset_index() if index else table
    return significance.flat_columns(frame).to_csv(index=False)


def to_markdown(table: pd.DataFrame, index: bool = True) -> str:
    frame = table.reset_index() if index else table
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)
