"""The leaderboard as Markdown, CSV or one self-contained HTML page."""

from __future__ import annotations

import pandas as pd

from recsec.harness.html import Link, Page
from recsec.harness.leaderboard import FamilyBoard
from recsec.harness.report import to_markdown
from recsec.harness.significance import Estimate
from recsec.harness.stats import METHOD_T, Interval

READING = (
    "Each matrix entry is the attack's success under a defense over every finished cell of the family (all "
    "grids, targets, knowledge settings): the mean of each seed's cells, with its 95% interval over seeds "
    "(Student's t; with one seed, a bootstrap over the graded units), and how many cells and seeds in brackets. "
    "* marks a defended entry whose leakage differs significantly from its attack's undefended entry (paired "
    "t-test over seeds, Holm-corrected over the matrix). The last row is the defense's utility cost: how much the "
    "target's recall (hit ratio for next-item targets) at K fell against the undefended twin cell. Protection is "
    "how much the attack's success fell against that twin. Defenses are ranked by protection; defenses that no "
    "test separates (paired over seeds, Holm over every pair) share a rank. A defense is Pareto-optimal when no "
    "other defense of the family protects at least as much for at most its cost. The entries table keeps "
    "settings apart: one row per setting, over its seeds, with its runs; * marks protection significantly "
    "different from none (Holm over the table)."
)

_NUMBERS = ["success", "protection", "utility_cost", "utility_mean", "seeds"]
_RAW = [f"{name}_{part}" for name in ("success", "utility_cost", "protection") for part in ("mean", "low", "high")] \
    + ["protection_p_adjusted", "protection_significant"]


def entry_columns(board: FamilyBoard) -> list[str]:
    axes = [c for c in board.entries.columns if c not in _RAW + ["seeds", "utility_mean", "family", "experiment",
                                                                 "recsec.dataset", "grid", "cell_hashes",
                                                                 "code_versions", "runs"]]
    return ["grid", "recsec.dataset"] + axes


def _shown(board: FamilyBoard) -> pd.DataFrame:
    """The entries with each number as one Estimate (mean and interval; * on a significant
    protection), for Markdown and HTML."""
    entries = board.entries
    out = entries[entry_columns(board)].copy()
    for name in ("success", "protection", "utility_cost"):
        notes = [" *" if s else "" for s in entries["protection_significant"]] if name == "protection" else None
        out[name] = [Estimate(Interval(m, lo, hi, n, METHOD_T), digits=4, note=notes[i] if notes else "")
                     for i, (m, lo, hi, n) in enumerate(zip(entries[f"{name}_mean"], entries[f"{name}_low"],
                                                             entries[f"{name}_high"], entries["seeds"]))]
    out["utility_mean"] = entries["utility_mean"]
    out["seeds"] = entries["seeds"]
    out["code_versions"], out["cell_hashes"], out["runs"] = (entries["code_versions"], entries["cell_hashes"],
                                                             entries["runs"])
    return out


def _renamed(board: FamilyBoard, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={
        "recsec.dataset": "dataset", "success": board.success, "utility_mean": board.utility,
        "utility_cost": "utility cost"})


def pareto_table(board: FamilyBoard) -> pd.DataFrame:
    """The Pareto view with each number as an Estimate (mean and interval)."""
    p = board.pareto
    if p.empty:
        return p
    return pd.DataFrame({
        "rank": p["rank"], "defense": p["defense"],
        f"protection (Δ{board.success})": _estimates(p, "protection"),
        f"utility cost (Δ{board.utility})": _estimates(p, "utility_cost"),
        "pairs": p["pairs"], "pareto_optimal": p["pareto_optimal"].map(bool)})


def _estimates(frame: pd.DataFrame, name: str) -> list[Estimate]:
    return [Estimate(Interval(m, lo, hi, 2, METHOD_T), digits=4)
            for m, lo, hi in zip(frame[name], frame[f"{name}_low"], frame[f"{name}_high"])]


def to_markdown_text(boards: list[FamilyBoard]) -> str:
    parts = ["# recsec leaderboard", "", READING]
    for board in boards:
        parts += ["", f"## {board.family}: {board.success} ({board.meaning})", "", to_markdown(board.matrix),
                  "", "### Pareto view: protection against utility cost", ""]
        pareto = pareto_table(board)
        if not pareto.empty:
            pareto["pareto_optimal"] = pareto["pareto_optimal"].map(lambda v: "yes" if v else "")
        parts += [to_markdown(pareto, index=False), "", "### Entries", ""]
        entries = _shown(board)
        entries["runs"] = [" ".join(f"[{seed}]({url})" if url else str(seed) for seed, _, url in runs)
                           for runs in entries["runs"]]
        parts.append(to_markdown(_renamed(board, _rounded(entries)), index=False))
    return "\n".join(parts) + "\n"


def to_csv_text(boards: list[FamilyBoard]) -> str:
    """One row per entry (setting x attack x defense), every family: each number's mean and
    interval, protection's Holm-adjusted p-value, the runs as seed=url pairs."""
    frames = []
    for board in boards:
        entries = board.entries[entry_columns(board) + _RAW + ["utility_mean", "seeds", "code_versions",
                                                                "cell_hashes", "runs"]].copy()
        entries["runs"] = [" ".join(f"{seed}={url or cell}" for seed, cell, url in runs) for runs in entries["runs"]]
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
                        caption="One point per defense, mean over seeds of its paired cells (bars: 95% interval); "
                                "green points are Pareto-optimal.")
        page.table(pareto_table(board))
        page.heading("Entries", level=3)
        entries = _shown(board).drop(columns=["cell_hashes"])
        entries["runs"] = [[Link(f"seed {seed}: {cell[:10]}", url) if url else f"seed {seed}: {cell[:10]}"
                            for seed, cell, url in runs] for runs in entries["runs"]]
        page.table(_renamed(board, entries.rename(columns={"runs": "runs (seed: cell hash)"})))
    return page.render()


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda c: c.round(4) if c.dtype.kind == "f" else c)
