"""The leaderboard as Markdown, CSV or one self-contained HTML page."""

from __future__ import annotations

import pandas as pd

from recsec.harness.html import Link, Page
from recsec.harness.leaderboard import FamilyBoard
from recsec.harness.report import to_markdown

READING = (
    "Each matrix entry is the attack's success under a defense: mean ± std over every finished cell of "
    "the family (all grids, targets, knowledge settings and seeds; how many in brackets). The last row is "
    "the defense's utility cost: how much the target's recall (hit ratio for next-item targets) at K fell "
    "against the undefended twin cell. Protection is how much the attack's success fell against that twin. "
    "A defense is Pareto-optimal when no other defense of the family protects at least as much for at most "
    "its cost. The entries table keeps settings apart: one row per setting, over its seeds, with its runs."
)

_NUMBERS = ["success_mean", "success_std", "seeds", "utility_mean", "utility_cost_mean", "utility_cost_std",
            "protection_mean"]


def entry_columns(board: FamilyBoard) -> list[str]:
    axes = [c for c in board.entries.columns if c not in _NUMBERS + ["family", "experiment", "recsec.dataset",
                                                                      "grid", "cell_hashes", "code_versions", "runs"]]
    return ["grid", "recsec.dataset"] + axes + _NUMBERS + ["code_versions", "cell_hashes", "runs"]


def _renamed(board: FamilyBoard, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={
        "recsec.dataset": "dataset", "success_mean": board.success, "success_std": "std",
        "utility_mean": board.utility, "utility_cost_mean": "utility cost", "utility_cost_std": "cost std",
        "protection_mean": "protection"})


def pareto_table(board: FamilyBoard) -> pd.DataFrame:
    table = board.pareto.rename(columns={"protection": f"protection (Δ{board.success})",
                                         "utility_cost": f"utility cost (Δ{board.utility})"})
    return table.assign(pareto_optimal=table["pareto_optimal"].map(bool))


def to_markdown_text(boards: list[FamilyBoard]) -> str:
    parts = ["# recsec leaderboard", "", READING]
    for board in boards:
        parts += ["", f"## {board.family}: {board.success} ({board.meaning})", "", to_markdown(board.matrix),
                  "", f"### Pareto view: protection against utility cost", ""]
        pareto = pareto_table(board)
        pareto["pareto_optimal"] = pareto["pareto_optimal"].map(lambda v: "yes" if v else "")
        parts += [to_markdown(_rounded(pareto), index=False), "", "### Entries", ""]
        entries = board.entries[entry_columns(board)].copy()
        entries["runs"] = [" ".join(f"[{seed}]({url})" for seed, _, url in runs) for runs in entries["runs"]]
        parts.append(to_markdown(_rounded(_renamed(board, entries)), index=False))
    return "\n".join(parts) + "\n"


def to_csv_text(boards: list[FamilyBoard]) -> str:
    """One row per entry (setting x attack x defense), every family, runs as seed=url pairs."""
    frames = []
    for board in boards:
        entries = board.entries[entry_columns(board)].copy()
        entries["runs"] = [" ".join(f"{seed}={url}" for seed, _, url in runs) for runs in entries["runs"]]
        entries.insert(0, "family", board.family)
        entries.insert(1, "k", board.k)
        entries.insert(2, "success_metric", board.success)
        entries.insert(3, "utility_metric", board.utility)
        frames.append(entries.rename(columns={"recsec.dataset": "dataset"}))
    return pd.concat(frames, ignore_index=True).to_csv(index=False)


def to_html_text(boards: list[FamilyBoard], source: str) -> str:
    from recsec.harness import plots

    page = Page("recsec leaderboard", subtitle=f"from {source}")
    page.text(READING)
    for board in boards:
        page.heading(f"{board.family}: {board.success}")
        page.text(board.meaning, css="meta")
        page.table(board.matrix, index=True)
        page.heading("Pareto view: protection against utility cost", level=3)
        if not board.pareto.empty:
            page.figure(plots.pareto_figure(board.pareto, f"Δ{board.success}", f"Δ{board.utility}",
                                            title=f"{board.family}: defenses"),
                        caption="One point per defense, mean over its paired cells (bars: std); "
                                "green points are Pareto-optimal.")
        page.table(pareto_table(board))
        page.heading("Entries", level=3)
        entries = board.entries[[c for c in entry_columns(board) if c != "cell_hashes"]].copy()
        entries["runs"] = [[Link(f"seed {seed}: {cell[:10]}", url) for seed, cell, url in runs]
                           for runs in entries["runs"]]
        page.table(_renamed(board, entries.rename(columns={"runs": "runs (seed: cell hash)"})))
    return page.render()


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda c: c.round(4) if c.dtype.kind == "f" else c)
