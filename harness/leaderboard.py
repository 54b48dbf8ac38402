"""The attacks-versus-defenses leaderboard, across grids and families, from MLflow.

Each finished cell is one measurement of an attack's success under a defense. A defended cell is
paired with the undefended cell that matches it in everything else (grid, target, clone, attack,
knowledge, seed); the pair gives the defense's *protection* (how much the attack's success fell)
and its *utility cost* (how much the target's recall or hit ratio fell). Matrices pool every
setting of a family; the entry table keeps settings apart, one row per setting over its seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsec.harness.errors import RecsecError
from recsec.harness.families import Family, Success, column, family_names
from recsec.harness.grid import all_axes
from recsec.harness.report import cell_frame, natural_key, registered_families
from recsec.harness.tracking import CELL_HASH, CODE_VERSION, FAMILY

UNDEFENDED = "none"


def setting_columns() -> list[str]:
    """Everything that names a setting, besides the defense: the pairing key of a defended cell."""
    return ["experiment"] + [f"tags.{a}" for a in all_axes() if a != "defense"] + ["tags.seed"]


def entry_columns() -> list[str]:
    return ["family", "experiment", "tags.recsec.dataset"] + [f"tags.{a}" for a in all_axes()]


@dataclass
class FamilyBoard:
    family: str
    k: int
    success: str  # column label, e.g. agr_at_10
    utility: str  # e.g. recall_at_10
    meaning: str
    matrix: pd.DataFrame  # attack x defense: 'mean ± std (cells, seeds)', last row the utility cost
    pareto: pd.DataFrame  # per defense: protection, utility cost, pairs, on_front
    entries: pd.DataFrame  # per setting: numbers, seeds, runs, hashes, code versions


def load_cells(tracking_uri: str, grids: list[str] | None = None) -> pd.DataFrame:
    """Finished cells (the latest run of each) of the named grids (files or experiment names), or
    of every experiment, with their family."""
    return cell_frame(tracking_uri, grids or None)


def build(frame: pd.DataFrame, k: int = 10, mlflow_url: str = "http://127.0.0.1:5000") -> list[FamilyBoard]:
    """One board per registered family of these runs (each family says how success is read)."""
    boards = [_family_board(family, frame[frame["family"] == family.name], k, mlflow_url.rstrip("/"))
              for family in registered_families(frame)]
    if not boards:
        raise RecsecError(f"none of these runs belongs to a registered family ({', '.join(family_names())}); "
                          f"theirs: {', '.join(sorted(map(str, frame['family'].unique())))}")
    return boards


def _family_board(family: Family, rows: pd.DataFrame, k_wanted: int, mlflow_url: str) -> FamilyBoard:
    success = family.success
    k = _nearest_k(rows, family, k_wanted)
    rows = rows.assign(success=success.value(rows, k), utility=_served_utility(rows, "recall", k))
    has_recall = rows["utility"].notna()
    # Next-item (sequential) targets have a hit ratio, not a recall. A pair shares its target,
    # so its cost is in one unit either way.
    rows["utility"] = rows["utility"].fillna(_served_utility(rows, "hr", k))
    utility = "recall" if has_recall.all() else "hr" if not has_recall.any() else "recall|hr"
    rows = rows.dropna(subset=["success"])
    rows = rows.assign(leakage=success.leakage(rows["success"]))
    rows = _paired(rows)
    success_name = success.label(k)
    return FamilyBoard(
        family=family.name, k=k, success=success_name, utility=f"{utility}_at_{k}", meaning=success.meaning,
        matrix=_matrix(rows, f"{utility}_at_{k}"), pareto=pareto(rows), entries=_entries(rows, mlflow_url),
    )


def _paired(rows: pd.DataFrame) -> pd.DataFrame:
    """Each cell with its undefended twin's leakage and utility: protection and utility cost."""
    keys = [c for c in setting_columns() if c in rows]
    base = (rows[rows["tags.defense"] == UNDEFENDED].groupby(keys, dropna=False)[["leakage", "utility"]]
            .mean().rename(columns={"leakage": "base_leakage", "utility": "base_utility"}).reset_index())
    out = rows.merge(base, on=keys, how="left")
    return out.assign(protection=out["base_leakage"] - out["leakage"], utility_cost=out["base_utility"] - out["utility"])


def _matrix(rows: pd.DataFrame, utility: str) -> pd.DataFrame:
    attacks = sorted(rows["tags.attack"].unique(), key=natural_key)
    defenses = _defense_order(rows["tags.defense"])
    table = pd.DataFrame("", index=attacks, columns=defenses)
    for (attack, defense), group in rows.groupby(["tags.attack", "tags.defense"]):
        seeds = group["tags.seed"].nunique()
        count = f"{seeds} seeds" if len(group) == seeds else f"{len(group)} cells, {seeds} seeds"
        table.loc[attack, defense] = f"{_mean_std(group['success'])} ({count})"
    cost_row = {}
    for defense, group in rows.groupby("tags.defense"):
        cost = group["utility_cost"].dropna()
        cost_row[defense] = _mean_std(cost) if len(cost) else "no undefended twin"
    table.loc[f"utility cost (Δ{utility})"] = pd.Series(cost_row)
    table.index.name = "attack \\ defense"
    return table


def pareto(rows: pd.DataFrame) -> pd.DataFrame:
    """Per defense: mean protection and utility cost over its paired cells, and whether no other
    defense protects at least as much for at most its cost (strictly better in one)."""
    paired = rows.dropna(subset=["protection", "utility_cost"])
    if paired.empty:
        return pd.DataFrame(columns=["defense", "protection", "protection_std", "utility_cost",
                                     "utility_cost_std", "pairs", "pareto_optimal"])
    out = paired.groupby("tags.defense").agg(
        protection=("protection", "mean"), protection_std=("protection", "std"),
        utility_cost=("utility_cost", "mean"), utility_cost_std=("utility_cost", "std"),
        pairs=("protection", "size")).reset_index().rename(columns={"tags.defense": "defense"})
    p, c = out["protection"].to_numpy(), out["utility_cost"].to_numpy()
    dominated = [bool(np.any((p >= p[i]) & (c <= c[i]) & ((p > p[i]) | (c < c[i])))) for i in range(len(out))]
    out["pareto_optimal"] = ~np.array(dominated)
    order = _defense_order(out["defense"])
    return out.set_index("defense").loc[order].reset_index()


def _entries(rows: pd.DataFrame, mlflow_url: str) -> pd.DataFrame:
    keys = [c for c in entry_columns() if c in rows]
    rows = rows.assign(**{c: rows[c].fillna("") for c in keys})  # an axis a run lacks groups as ""
    if "tags.recsec.grid" not in rows:
        rows = rows.assign(**{"tags.recsec.grid": rows["experiment"]})
    table = rows.groupby(keys, sort=False).agg(
        grid=("tags.recsec.grid", "first"), success_mean=("success", "mean"), success_std=("success", "std"),
        utility_mean=("utility", "mean"), utility_cost_mean=("utility_cost", "mean"),
        utility_cost_std=("utility_cost", "std"), protection_mean=("protection", "mean"),
        seeds=("tags.seed", "nunique"))
    # Per entry, its runs in seed order: (seed, cell hash, link), and the code versions.
    runs: dict[tuple, list] = {key: [] for key in table.index}
    versions: dict[tuple, set] = {key: set() for key in table.index}
    version = rows.get(f"tags.{CODE_VERSION}", pd.Series("?", index=rows.index)).fillna("?")
    ordered = rows.assign(_version=version).iloc[
        sorted(range(len(rows)), key=lambda i: natural_key(rows["tags.seed"].iat[i]))]
    for key, seed, cell, exp, run, ver in zip(
            ordered[keys].itertuples(index=False, name=None), ordered["tags.seed"], ordered[f"tags.{CELL_HASH}"],
            ordered["experiment_id"], ordered["run_id"], ordered["_version"]):
        key = key if len(keys) > 1 else key[0]
        runs[key].append((seed, cell, f"{mlflow_url}/#/experiments/{exp}/runs/{run}"))
        versions[key].add(ver)
    table["cell_hashes"] = [" ".join(c[:12] for _, c, _ in runs[key]) for key in table.index]
    table["code_versions"] = [" ".join(sorted(versions[key])) for key in table.index]
    table["runs"] = [runs[key] for key in table.index]
    table = table.reset_index()
    table.columns = [c.removeprefix("tags.") for c in table.columns]
    sort_keys = [[natural_key(v) for v in table[c]] for c in ("experiment", "target", "attack", "defense")]
    table = table.iloc[sorted(range(len(table)), key=lambda i: tuple(k[i] for k in sort_keys))].reset_index(drop=True)
    if "clone" in table:
        table["clone"] = table["clone"].where(table["clone"] != table["target"], "same")
    # Axes that are the same for every entry of the family say nothing: drop them.
    constant = [a for a in all_axes() if a in table and a not in ("attack", "defense", "target")
                and table[a].nunique(dropna=False) <= 1]
    return table.drop(columns=constant)


def _served_utility(rows: pd.DataFrame, name: str, k: int) -> pd.Series:
    """What the served lists are worth: the defended lists where an output defense changed them,
    else the (possibly defense-trained) target's own."""
    return column(rows, f"defended_{name}_at_{k}").fillna(column(rows, f"{name}_at_{k}"))


def _nearest_k(rows: pd.DataFrame, family: Family, k: int) -> int:
    """The measured K nearest `k`: of the success metric, or for a success without a K (an AUC),
    of the target's utility."""
    ks = family.success.measured_ks(rows)
    if not ks and not family.success.uses_k:
        ks = Success("recall_at_{k}", "").measured_ks(rows) or Success("hr_at_{k}", "").measured_ks(rows)
    if not ks:
        raise RecsecError(f"the {family.name} runs have no {family.success.metric.format(k='K')} metrics")
    return min(ks, key=lambda x: (abs(x - k), x))


def _defense_order(values) -> list[str]:
    names = sorted(set(values), key=natural_key)
    return ([UNDEFENDED] if UNDEFENDED in names else []) + [n for n in names if n != UNDEFENDED]


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return ""
    return f"{values.mean():.3f}" if len(values) < 2 else f"{values.mean():.3f} ± {values.std():.3f}"
