"""One grid's HTML report: its summary table, the curves along every swept knowledge or budget
axis, heatmaps over the component axes that vary, and its own leaderboard (defenses' protection
against utility cost), in one self-contained page."""

from __future__ import annotations

import pandas as pd

from recsec.harness import leaderboard, plots, report, stats
from recsec.harness.html import Link, Page
from recsec.harness.leaderboard_render import READING, pareto_table

# Pairs of component axes worth a heatmap when both vary (with the target against each model
# axis of the family's threat model: the attacker's own model).
HEATMAPS = (("attack", "target"), ("attack", "defense"), ("target", "defense"))


def grid_page(frame: pd.DataFrame, source: str, mlflow_url: str | None, pivots: list[tuple[str, str, str]] = ()) -> str:
    """`frame`: one grid's cells (report.cell_frame from MLflow, or report.records_cells);
    `source`: where they came from, as the page says."""
    name = frame["experiment"].iloc[0]
    k = report.main_k(frame)
    families = sorted(frame["family"].unique())
    versions = ", ".join(sorted(frame.get("tags.recsec.code_version", pd.Series(["?"])).fillna("?").unique()))
    page = Page(f"recsec grid: {name}", subtitle=(
        f"{len(frame)} finished cells, {frame['tags.seed'].nunique()} seeds, family {', '.join(families)}; "
        f"{source}; code {versions}"))
    experiment_id = frame["experiment_id"].iloc[0]
    if mlflow_url and experiment_id:
        page.table(pd.DataFrame({"MLflow experiment": [Link(name, f"{mlflow_url.rstrip('/')}/#/experiments/{experiment_id}")]}))

    page.heading(f"Summary at K={k}")
    page.text("One row per combination of the axes the grid varies. " + stats.READING, css="meta")
    page.table(report.summary(frame, k))
    for metric, rows, cols in pivots:
        page.heading(f"{metric}: {rows} x {cols}", level=3)
        page.table(report.pivot(frame, metric, rows, cols))

    varying = report.varying_axes(frame)
    for family in report.registered_families(frame):
        rows = frame[frame["family"] == family.name]
        metric = family.headline_metric(k)
        if f"metrics.{metric}" not in rows:
            continue
        threat = family.threat_model
        lines = next((a for a in ("attack", "defense", "target", *threat.model_axes())
                      if rows[f"tags.{a}"].nunique() > 1), "attack")
        # How much the attacker knows or may ask (a share, a budget): each varying one draws curves.
        curves = [a for a in threat.numeric_axes() if a in varying and rows[f"tags.{a}"].nunique() > 1]
        pairs = HEATMAPS[:1] + tuple(("target", m) for m in threat.model_axes()) + HEATMAPS[1:]
        maps = [(r, c) for r, c in pairs if rows[f"tags.{r}"].nunique() > 1 and rows[f"tags.{c}"].nunique() > 1
                and not (rows[f"tags.{r}"] == rows[f"tags.{c}"]).all()]  # a model `same` follows the target
        if curves or maps:
            page.heading(f"{family.name}: {metric}")
        for axis in curves:
            page.figure(plots.line_figure(rows, metric, axis, lines), caption=f"{metric} against {axis}, one line "
                        f"per {lines}; mean over seeds with its 95% interval (other axes pooled)")
        for r, c in maps:
            page.figure(plots.heatmap_figure(rows, metric, r, c), caption=f"{metric}, {r} x {c}: mean over seeds "
                        "(other axes pooled)")

    boards = leaderboard.build(frame, k=k, mlflow_url=mlflow_url)
    for board in boards:
        if board.pareto.empty or len(board.pareto) < 2:
            continue  # one defense: nothing to trade off
        page.heading(f"Defenses ({board.family}): protection against utility cost")
        page.text(READING, css="meta")
        page.table(board.matrix, index=True)
        page.figure(plots.pareto_figure(board.pareto, f"Δ{board.success}", f"Δ{board.utility}"),
                    caption="one point per defense over its paired cells; green: Pareto-optimal")
        page.table(pareto_table(board))
    return page.render()
