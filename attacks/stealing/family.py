"""Model stealing (Zhu et al.): the attacker knows some target users' data, queries their top-K
lists and fits a clone. Against user-id targets (`cells`) or sequential ones (`sequence_cells`)."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from pydantic import Field

from recsec import models
from recsec.attacks.family_threat import (DEFAULT, SAME, AuxShare, FamilyThreat, ItemOverlap, KnownShare, KnownUnit,
                                          ListLength, QueryBudget, check_list_lengths_fit, check_output_defense_lists)
from recsec.harness.data.sequences import sequences_from_interactions
from recsec.attacks.stealing import cells, sequence_cells
from recsec.harness.families.base import Family, Success
from recsec.harness.families.registry import register_family
from recsec.harness.grid_schema import Component

if TYPE_CHECKING:
    from recsec.harness.cell import Cell
    from recsec.harness.data import Interactions
    from recsec.harness.grid_schema import Grid


class StealingThreat(FamilyThreat):
    """Zhu et al.'s attacker: some target users' data, their top-K lists, an auxiliary model."""

    clone: Component = Field(SAME, description="the clone's architecture")
    known_share: KnownShare = DEFAULT.known_share
    known_unit: KnownUnit = DEFAULT.known_unit
    list_length: ListLength = DEFAULT.list_length
    query_budget: QueryBudget = DEFAULT.query_budget
    aux_share: AuxShare = DEFAULT.aux_share
    item_overlap: ItemOverlap = DEFAULT.item_overlap


def scores_sequences(cell: Cell) -> bool:
    """Whether the cell's target scores item sequences (the extraction protocol) or user ids."""
    return models.model_class(cell.target.name).input_kind == "sequences"


def _check_sequences(grid: Grid, data: Interactions, source: str, cells: list[Cell]) -> None:
    if any(scores_sequences(cell) for cell in cells):
        sequences_from_interactions(data)  # no time order: a DataError now, not in every task


class ListsFamily(Family):
    """A family whose attacker sees top-K lists through the oracle and fits a model of the
    target: agreement is its success, the target's recall (or hit ratio) its utility."""

    def check(self, grid: Grid, source: str) -> list[str]:
        return check_output_defense_lists(grid, source)

    def check_data(self, grid: Grid, data: Interactions, source: str, cells: list[Cell]) -> None:
        check_list_lengths_fit(grid, data, source)
        _check_sequences(grid, data, source, cells)

    def summary_metrics(self, k: int, utility: str) -> list[str]:
        return [f"agr_at_{k}", f"agr_served_at_{k}", f"{utility}_at_{k}", f"defended_{utility}_at_{k}"]

    def auxiliary_identity(self, cell: Cell) -> dict:
        """The attacker's model of the clone's architecture on the auxiliary users it holds."""
        out = {k: cell.normalized()[k] for k in ("dataset", "split", "clone", "seed")}
        knowledge = cell.threat.knowledge
        out["auxiliary_data"] = {"aux_share": knowledge.aux_share, "item_overlap": knowledge.item_overlap}
        return out


class Stealing(ListsFamily):
    name = "stealing"
    threat_model = StealingThreat
    success = Success("agr_at_{k}", "the clone's agreement with the target's top-K lists")

    def cell_module(self, cell: Cell) -> ModuleType:
        return sequence_cells if scores_sequences(cell) else cells


register_family(Stealing())
