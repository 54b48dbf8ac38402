"""Membership inference against recommenders (Zhang et al., CCS 2021; DL-MIA, KDD 2022): from a
user's history and the list served to them, tell whether the target trained on the user. The
attacker's shadow recommender (the grid's clone axis) on a shadow part trains the classifier."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, model_validator

from recsec.attacks.family_threat import (DEFAULT, SAME, FamilyThreat, ListLength, check_list_lengths_fit,
                                          check_output_defense_lists)
from recsec.attacks.membership import cells
from recsec.harness.families.base import Family, Success
from recsec.harness.families.registry import register_family
from recsec.harness.grid_schema import Component, DatasetConfig
from recsec.harness.threat_model import Section

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.data import Interactions
    from recsec.harness.grid_schema import Grid


class MembershipConfig(Section):
    """How a membership grid partitions users and serves them (Zhang et al.'s protocol), and the
    attacker's shadow data: the grid's `membership` section."""

    vector_share: float = Field(1 / 3, ge=0, lt=1, description="users whose data only learns item vectors")
    shadow_share: float = Field(1 / 3, gt=0, lt=1, description="users of the shadow part")
    member_share: float = Field(0.5, gt=0, lt=1, description="share of the shadow and target parts that are members")
    nonmember: Literal["popular", "fold_in"] = "popular"
    item_dim: int = Field(100, ge=1, description="dimension of the attacker's item vectors")
    shadow_dataset: Optional[DatasetConfig] = Field(
        None, description="the shadow part's dataset (cross-dataset setting); default: the grid's dataset")

    @model_validator(mode="after")
    def _target_part_left(self):
        if self.vector_share + self.shadow_share >= 1:
            raise ValueError(f"vector_share + shadow_share must be < 1 (the target part gets the rest), "
                             f"got {self.vector_share} + {self.shadow_share}")
        return self


class MembershipThreat(FamilyThreat):
    """The attacker sees a user's history and the list served to them; its shadow recommender
    (the `clone` axis) on the shadow part trains its classifier."""

    sections = ("membership",)

    clone: Component = Field(SAME, description="the shadow recommender's architecture")
    list_length: ListLength = DEFAULT.list_length
    membership: MembershipConfig = MembershipConfig()


class Membership(Family):
    name = "membership"
    threat_model = MembershipThreat
    success = Success("roc_auc", "ROC AUC of the membership scores (protection on max(AUC, 1-AUC))", folded=True)

    defense_kinds = ("output",)

    def check(self, grid: Grid, source: str) -> list[str]:
        return check_output_defense_lists(grid, source)

    def check_data(self, grid: Grid, data: Interactions, source: str, cells: list[Cell]) -> None:
        check_list_lengths_fit(grid, data, source)

    def target_identity(self, cell: Cell) -> dict:
        out = super().target_identity(cell)
        # The target trains on its members and serves its part; the shadow data is the attacker's.
        out["membership"] = cell.threat.membership.model_dump(exclude={"shadow_dataset"})
        return out

    def auxiliary_identity(self, cell: Cell) -> dict:
        """The shadow recommender (the clone axis) on the shadow part of the shadow dataset."""
        out = {k: cell.normalized()[k] for k in ("split", "clone", "seed")}
        out["membership"] = cell.threat.membership.model_dump()
        out["dataset"] = self.auxiliary_dataset(cell).model_dump()
        return out

    def auxiliary_dataset(self, cell: Cell) -> DatasetConfig:
        crossed = cell.threat.membership.shadow_dataset
        return crossed if crossed is not None else cell.dataset

    def cell_module(self, cell: Cell) -> ModuleType:
        return cells

    def summary_metrics(self, k: int, utility: str) -> list[str]:
        return ["roc_auc", "balanced_accuracy", "tpr_at_1pct_fpr", f"{utility}_at_{k}", f"defended_{utility}_at_{k}"]


register_family(Membership())
