"""Figures from a grid's cells: a metric against a swept axis (one line per value of another axis,
the mean over seeds with its 95% interval, harness.stats), a heatmap over two axes (e.g. target x clone), and a defense's protection
against its utility cost. `*_figure` returns the figure (the HTML report inlines it);
`line_plot`/`heatmap` write a PNG file."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers or in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from recsec.harness.report import aggregate, natural_key  # noqa: E402


def _ordered(values) -> list:
    """Axis values in natural order: 5 before 25, 'popular_mix(n=5)' before '...(n=10)'."""
    return sorted(set(values), key=natural_key)


def line_plot(frame: pd.DataFrame, metric: str, x: str, lines: str, output: Path, title: str = "") -> Path:
    return save(line_figure(frame, metric, x, lines, title), output)


def heatmap(frame: pd.DataFrame, metric: str, rows: str, cols: str, output: Path, title: str = "") -> Path:
    return save(heatmap_figure(frame, metric, rows, cols, title), output)


def line_figure(frame: pd.DataFrame, metric: str, x: str, lines: str, title: str = ""):
    agg = aggregate(frame, metric, [lines, x])
    xs = _ordered(agg[x])
    positions = {v: i for i, v in enumerate(xs)}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, group in agg.groupby(lines, sort=True):
        group = group.assign(pos=group[x].map(positions)).sort_values("pos")
        below, above = (group["mean"] - group["low"]).fillna(0), (group["high"] - group["mean"]).fillna(0)
        ax.errorbar(group["pos"], group["mean"], yerr=[below, above], marker="o", capsize=3, label=str(name))
    ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=25 if max(len(str(v)) for v in xs) > 6 else 0,
                  ha="right" if max(len(str(v)) for v in xs) > 6 else "center")
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} against {x}")
    ax.grid(alpha=0.3)
    ax.legend(title=lines, fontsize="small")
    return fig


def heatmap_figure(frame: pd.DataFrame, metric: str, rows: str, cols: str, title: str = ""):
    agg = aggregate(frame, metric, [rows, cols])
    row_values, col_values = _ordered(agg[rows]), _ordered(agg[cols])
    grid = np.full((len(row_values), len(col_values)), np.nan)
    for r, c, mean in zip(agg[rows], agg[cols], agg["mean"]):
        grid[row_values.index(r), col_values.index(c)] = mean
    # Room for the labels: component labels with parameters run long.
    row_label = max(len(str(v)) for v in row_values)
    col_label = max(len(str(v)) for v in col_values)
    size = (3.0 + 0.08 * row_label + 1.1 * len(col_values), 2.0 + 0.06 * col_label + 0.6 * len(row_values))
    fig, ax = plt.subplots(figsize=size)
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(row_values)):
        for j in range(len(col_values)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center",
                        color="white" if grid[i, j] < np.nanmean(grid) else "black", fontsize="small")
    ax.set_xticks(range(len(col_values)), [str(v) for v in col_values], rotation=30, ha="right")
    ax.set_yticks(range(len(row_values)), [str(v) for v in row_values])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    ax.set_title(title or metric)
    fig.colorbar(image, ax=ax, label=metric)
    return fig


def pareto_figure(points: pd.DataFrame, protection: str, cost: str, title: str = ""):
    """One point per defense (columns defense, protection, utility_cost, pareto_optimal, and each
    one's *_low and *_high): error bars are the 95% intervals, the Pareto front joined by a line."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for _, row in points.iterrows():
        front = bool(row["pareto_optimal"])
        ax.errorbar(row["utility_cost"], row["protection"], xerr=_bar(row, "utility_cost"),
                    yerr=_bar(row, "protection"), marker="o" if front else "s", capsize=3,
                    color="tab:green" if front else "tab:gray", alpha=0.9)
        ax.annotate(str(row["defense"]), (row["utility_cost"], row["protection"]), textcoords="offset points",
                    xytext=(5, 5), fontsize="small")
    front = points[points["pareto_optimal"].astype(bool)].sort_values("utility_cost")
    if len(front) > 1:
        ax.plot(front["utility_cost"], front["protection"], color="tab:green", alpha=0.5, linestyle="--",
                label="Pareto front")
        ax.legend(fontsize="small")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel(f"utility cost ({cost}; lower is better)")
    ax.set_ylabel(f"protection ({protection}; higher is better)")
    ax.set_title(title or "protection against utility cost")
    ax.grid(alpha=0.3)
    return fig


def _bar(row, name: str) -> list[list[float]]:
    """An asymmetric error bar from the interval's ends (none where there is no interval)."""
    mean, low, high = row[name], row[f"{name}_low"], row[f"{name}_high"]
    return [[0.0 if pd.isna(low) else mean - low], [0.0 if pd.isna(high) else high - mean]]


def save(fig, output: Path) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
