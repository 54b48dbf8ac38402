"""Adversarial item images (TAaMR, Di Noia et al. 2020): the attacker perturbs the images of an
origin class's items toward a target class to lift them in a visual recommender's lists.
Defenses transform images before the features (JPEG, median, a purifier) or detect them."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import pandas as pd

from recsec.attacks.family_threat import DEFAULT, FamilyThreat, ListLength, check_list_lengths_fit
from recsec.attacks.visual import cells
from recsec.harness.families.base import Family, Success, column
from recsec.harness.families.registry import register_family

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.data import Interactions
    from recsec.harness.grid_schema import Grid


class VisualThreat(FamilyThreat):
    """TAaMR's attacker perturbs item images (its budget is the attack's epsilon); success is read
    in the top-K lists."""

    list_length: ListLength = DEFAULT.list_length


def _chr_shift(frame: pd.DataFrame, k: int) -> pd.Series:
    # Logged since cells kept per-user values; before, derived from the two CHRs.
    return column(frame, f"chr_shift_at_{k}").fillna(column(frame, f"chr_at_{k}_attacked")
                                                      - column(frame, f"chr_at_{k}_clean"))


class Visual(Family):
    name = "visual"
    threat_model = VisualThreat
    success = Success("chr_shift_at_{k}", "rise of the attacked class's category hit ratio@K (attacked - clean)",
                      derive=_chr_shift, k_metric="chr_at_{k}_clean")
    headline = "chr_at_{k}_attacked"

    own_defenses_only = True

    def check_data(self, grid: Grid, data: Interactions, source: str, cells: list[Cell]) -> None:
        check_list_lengths_fit(grid, data, source)

    def cell_module(self, cell: Cell) -> ModuleType:
        return cells

    def summary_metrics(self, k: int, utility: str) -> list[str]:
        return [f"chr_at_{k}_clean", f"chr_at_{k}_attacked", "targeted_success_rate", "detection_roc_auc",
                f"recall_at_{k}"]


register_family(Visual())
