"""PNG figures from MLflow runs: a metric against a swept axis (one line per value of another
axis, mean ± std over seeds), and a heatmap over two axes (e.g. target x clone)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers or in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness.report import aggregate, natural_key  # noqa: E402


def _ordered(values) -> list:
    """Axis values in natural order: 5 before 25, 'popular_mix(n=5)' before '...(n=10)'."""
    return sorted(set(values), key=natural_key)


def line_plot(frame: pd.DataFrame, metric: str, x: str, lines: str, output: Path, title: str = "") -> Path:
    agg = aggregate(frame, metric, [lines, x])
    xs = _ordered(agg[x])
    positions = {v: i for i, v in enumerate(xs)}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, group in agg.groupby(lines, sort=True):
        group = group.assign(pos=group[x].map(positions)).sort_values("pos")
        ax.errorbar(group["pos"], group["mean"], yerr=group["std"].fillna(0), marker="o", capsize=3, label=str(name))
    ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=25 if max(len(str(v)) for v in xs) > 6 else 0,
                  ha="right" if max(len(str(v)) for v in xs) > 6 else "center")
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} against {x}")
    ax.grid(alpha=0.3)
    ax.legend(title=lines, fontsize="small")
    return _save(fig, output)


def heatmap(frame: pd.DataFrame, metric: str, rows: str, cols: str, output: Path, title: str = "") -> Path:
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
    return _save(fig, output)


def _save(fig, output: Path) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
