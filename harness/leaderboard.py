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

from recsec.harness import significance, stats
from recsec.harness.errors import RecsecError
from recsec.harness.families import Family, Success, column, family_names
from recsec.harness.grid import all_axes, model_axes
from recsec.harness.report import cell_frame, natural_key, registered_families
from recsec.harness.significance import Estimate
from recsec.harness.run_tags import CELL_HASH, CODE_VERSION

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


def build(frame: pd.DataFrame, k: int = 10, mlflow_url: str | None = "http://127.0.0.1:5000") -> list[FamilyBoard]:
    """One board per registered family of these runs (each family says how success is read)."""
    boards = [_family_board(family, frame[frame["family"] == family.name], k, (mlflow_url or "").rstrip("/"))
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
    """Attack x defense: the success over every setting (the mean of each seed's cells, with its
    interval over seeds), a defended entry marked * where its leakage differs significantly from
    the undefended entry of its attack (paired over seeds, Holm over the matrix); the last row is
    each defense's utility cost."""
    attacks = sorted(rows["tags.attack"].unique(), key=natural_key)
    defenses = _defense_order(rows["tags.defense"])
    success = significance.rows_of(rows, rows["success"], ["tags.attack", "tags.defense"])
    leakage = significance.rows_of(rows, rows["leakage"], ["tags.attack", "tags.defense"])
    tests = [(key, stats.compare(leakage[(key[0], UNDEFENDED)].seeds, leakage[key].seeds))
             for key in leakage if key[1] != UNDEFENDED and (key[0], UNDEFENDED) in leakage]
    differs = {key for (key, _), c in zip(tests, stats.adjust([c for _, c in tests])) if c.significant}
    table = pd.DataFrame("", index=attacks, columns=defenses, dtype=object)
    counts = rows.groupby(["tags.attack", "tags.defense"]).agg(cells=("tags.seed", "size"),
                                                               seeds=("tags.seed", "nunique"))
    for (attack, defense), row in success.items():
        cells, seeds = counts.loc[(attack, defense)]
        count = f"{seeds} seeds" if cells == seeds else f"{cells} cells, {seeds} seeds"
        table.loc[attack, defense] = Estimate(row.interval(), digits=3,
                                              note=(" *" if (attack, defense) in differs else "") + f" ({count})")
    costs = significance.rows_of(rows, rows["utility_cost"], ["tags.defense"])
    table.loc[f"utility cost (Δ{utility})"] = pd.Series(
        {defense: (Estimate(costs[(defense,)].interval(), digits=3) if (defense,) in costs else "no undefended twin")
         for defense in defenses})
    table.index.name = "attack \\ defense"
    return table


def pareto(rows: pd.DataFrame) -> pd.DataFrame:
    """Per defense: mean protection and utility cost over its paired cells, each with its 95%
    interval over seeds; its rank by protection (1 + the defenses significantly more protective:
    defenses no test separates share a rank; paired over seeds, Holm over every pair); and
    whether no other defense protects at least as much for at most its cost (strictly better in
    one)."""
    paired = rows.dropna(subset=["protection", "utility_cost"])
    columns = ["defense", "rank", "protection", "protection_low", "protection_high", "utility_cost",
               "utility_cost_low", "utility_cost_high", "pairs", "pareto_optimal"]
    if paired.empty:
        return pd.DataFrame(columns=columns)
    protection = significance.rows_of(paired, paired["protection"], ["tags.defense"])
    cost = significance.rows_of(paired, paired["utility_cost"], ["tags.defense"])
    out = []
    for (defense,), row in protection.items():
        p, c = row.interval(), cost[(defense,)].interval()
        out.append({"defense": defense, "protection": p.mean, "protection_low": p.low, "protection_high": p.high,
                    "utility_cost": c.mean, "utility_cost_low": c.low, "utility_cost_high": c.high,
                    "pairs": int((paired["tags.defense"] == defense).sum())})
    out = pd.DataFrame(out)
    names = list(out["defense"])
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    compared = stats.adjust([stats.compare(protection[(a,)].seeds, protection[(b,)].seeds) for a, b in pairs])
    beats = {(a, b) if c.difference > 0 else (b, a) for (a, b), c in zip(pairs, compared) if c.significant}
    out["rank"] = out["defense"].map(stats.ranks_with_ties(dict(zip(names, out["protection"])), beats))
    p, c = out["protection"].to_numpy(), out["utility_cost"].to_numpy()
    dominated = [bool(np.any((p >= p[i]) & (c <= c[i]) & ((p > p[i]) | (c < c[i])))) for i in range(len(out))]
    out["pareto_optimal"] = ~np.array(dominated)
    order = _defense_order(out["defense"])
    return out.set_index("defense").loc[order].reset_index()[columns]


def _entries(rows: pd.DataFrame, mlflow_url: str) -> pd.DataFrame:
    keys = [c for c in entry_columns() if c in rows]
    rows = rows.assign(**{c: rows[c].fillna("") for c in keys})  # an axis a run lacks groups as ""
    if "tags.recsec.grid" not in rows:
        rows = rows.assign(**{"tags.recsec.grid": rows["experiment"]})
    table = rows.groupby(keys, sort=False).agg(
        grid=("tags.recsec.grid", "first"), utility_mean=("utility", "mean"), seeds=("tags.seed", "nunique"))
    # Each number over the entry's seeds, with its interval; protection tested against none
    # (its twin's leakage against its own, paired over seeds; Holm over the table's entries).
    entries = [key if isinstance(key, tuple) else (key,) for key in table.index]
    for name in ("success", "utility_cost", "protection"):
        estimates = significance.rows_of(rows, rows[name], keys)
        intervals = [estimates[key].interval() if key in estimates else stats.interval([]) for key in entries]
        table[f"{name}_mean"] = [i.mean for i in intervals]
        table[f"{name}_low"] = [i.low for i in intervals]
        table[f"{name}_high"] = [i.high for i in intervals]
    leakage = significance.rows_of(rows, rows["leakage"], keys)
    base = significance.rows_of(rows, rows["base_leakage"], keys)
    tests = stats.adjust([stats.compare(base[key].seeds, leakage[key].seeds) if key in base and key in leakage
                          else stats.compare([], []) for key in entries])
    table["protection_p_adjusted"] = [c.p_adjusted for c in tests]
    table["protection_significant"] = [c.significant for c in tests]
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
        # A record that never was an MLflow run (or whose store is unknown) links nowhere.
        url = f"{mlflow_url}/#/experiments/{exp}/runs/{run}" if mlflow_url and run and exp else ""
        runs[key].append((seed, cell, url))
        versions[key].add(ver)
    table["cell_hashes"] = [" ".join(c[:12] for _, c, _ in runs[key]) for key in table.index]
    table["code_versions"] = [" ".join(sorted(versions[key])) for key in table.index]
    table["runs"] = [runs[key] for key in table.index]
    table = table.reset_index()
    table.columns = [c.removeprefix("tags.") for c in table.columns]
    sort_keys = [[natural_key(v) for v in table[c]] for c in ("experiment", "target", "attack", "defense")]
    table = table.iloc[sorted(range(len(table)), key=lambda i: tuple(k[i] for k in sort_keys))].reset_index(drop=True)
    for axis in (a for a in model_axes() if a in table):
        table[axis] = table[axis].where(table[axis] != table["target"], "same")
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


