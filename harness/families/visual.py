"""Adversarial item images (TAaMR, Di Noia et al. 2020): the attacker perturbs the images of an
origin class's items toward a target class to lift them in a visual recommender's lists.
Defenses transform images before the features (JPEG, median, a purifier) or detect them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from recsec import defenses
from recsec.harness.families import visual_cells
from recsec.harness.families.base import CORE_AXES, Family, Success, column
from recsec.harness.families.registry import register_family

if TYPE_CHECKING:
    from recsec.attacks.oracle import Oracle
    from recsec.harness.data import Interactions
    from recsec.harness.grid import Cell, Grid
    from recsec.harness.records import TargetRecord
    from recsec.harness.serving import ServingState


def _chr_shift(frame: pd.DataFrame, k: int) -> pd.Series:
    return column(frame, f"chr_at_{k}_attacked") - column(frame, f"chr_at_{k}_clean")


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
            if "visual" not in (getattr(defenses.defense_class(defense.name), "families", None) or ()):
                problems.append(f"{source}: matrix.defense[{j}]: {defense.name} does not defend visual attacks; "
                                f"they take none or an input defense ({', '.join(_input_defenses())})")
        return problems

    def runner_modules(self, cell: Cell) -> tuple[str, ...]:
        return (visual_cells.__name__,)

    def train_target(self, cell: Cell, data: Interactions, target_hash: str, device: str) -> TargetRecord:
        return visual_cells.train_target(cell, data, target_hash, device)

    def grant(self, cell: Cell, state: ServingState, auxiliary: TargetRecord | None):
        return visual_cells.grant(cell, state, auxiliary)

    def oracle(self, cell: Cell, state: ServingState) -> Oracle:
        return visual_cells.oracle(cell, state)

    def run_attack(self, cell: Cell, view, oracle, device: str):
        return visual_cells.run_attack(cell, view, oracle, device)

    def grade(self, cell: Cell, data: Interactions, target: TargetRecord, view, result, device: str) -> dict:
        return visual_cells.grade(cell, data, target, view, result, device)

    def summary_metrics(self, k: int, utility: str) -> list[str]:
        return [f"chr_at_{k}_clean", f"chr_at_{k}_attacked", "targeted_success_rate", "detection_roc_auc",
                f"recall_at_{k}"]


def _input_defenses() -> list[str]:
    return [n for n in defenses.defense_names() if getattr(defenses.defense_class(n), "kind", "output") == "input"]


register_family(Visual())
