"""Adversarial item images (TAaMR, Di Noia et al. 2020): the attacker perturbs the images of an
origin class's items toward a target class to lift them in a visual recommender's lists.
Defenses transform images before the features (JPEG, median, a purifier) or detect them."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import pandas as pd

from recsec import defenses
from recsec.attacks.visual import cells
from recsec.harness.families.base import CORE_AXES, Family, Success, column
from recsec.harness.families.registry import register_family

if TYPE_CHECKING:
    from recsec.harness.grid import Cell, Grid


def _chr_shift(frame: pd.DataFrame, k: int) -> pd.Series:
    # Logged since cells kept per-user values; before, derived from the two CHRs.
    return column(frame, f"chr_shift_at_{k}").fillna(column(frame, f"chr_at_{k}_attacked")
                                                      - column(frame, f"chr_at_{k}_clean"))


class Visual(Family):
    name = "visual"
    axes = CORE_AXES + ("list_length",)
    success = Success("chr_shift_at_{k}", "rise of the attacked class's category hit ratio@K (attacked - clean)",
                      derive=_chr_shift, k_metric="chr_at_{k}_clean")
    headline = "chr_at_{k}_attacked"

    def check(self, grid: Grid, source: str) -> list[str]:
        problems = []
        for j, defense in enumerate(grid.matrix.defense):
            if defense.name == "none" or defense.name not in defenses.defense_names():
                continue
            if "visual" not in (defenses.defense_class(defense.name).families or ()):
                problems.append(f"{source}: matrix.defense[{j}]: {defense.name} does not defend visual attacks; "
                                f"they take none or an input defense ({', '.join(_input_defenses())})")
        return problems

    def cell_module(self, cell: Cell) -> ModuleType:
        return cells

    def summary_metrics(self, k: int, utility: str) -> list[str]:
        return [f"chr_at_{k}_clean", f"chr_at_{k}_attacked", "targeted_success_rate", "detection_roc_auc",
                f"recall_at_{k}"]


def _input_defenses() -> list[str]:
    return [n for n in defenses.defense_names() if defenses.defense_class(n).kind == "input"]


register_family(Visual())
