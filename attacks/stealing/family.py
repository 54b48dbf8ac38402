"""Model stealing (Zhu et al.): the attacker knows some target users' data, queries their top-K
lists and fits a clone. Against user-id targets (`cells`) or sequential ones (`sequence_cells`)."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from recsec.harness.data.sequences import sequences_from_interactions
from recsec.attacks.stealing import cells, sequence_cells
from recsec.harness.families.base import CORE_AXES, Family, Success
from recsec.harness.families.registry import register_family

if TYPE_CHECKING:
    from recsec.harness.data import Interactions
    from recsec.harness.grid import Cell, Grid


def _check_sequences(grid: Grid, data: Interactions, source: str, cells: list[Cell]) -> None:
    if any(cell.sequential for cell in cells):
        sequences_from_interactions(data)  # no time order: a DataError now, not in every task


class ListsFamily(Family):
    """A family whose attacker sees top-K lists through the oracle and fits a model of the
    target: agreement is its success, the target's recall (or hit ratio) its utility."""

    def check_data(self, grid: Grid, data: Interactions, source: str, cells: list[Cell]) -> None:
        _check_sequences(grid, data, source, cells)

    def summary_metrics(self, k: int, utility: str) -> list[str]:
        return [f"agr_at_{k}", f"agr_served_at_{k}", f"{utility}_at_{k}", f"defended_{utility}_at_{k}"]


class Stealing(ListsFamily):
    name = "stealing"
    axes = CORE_AXES + ("clone", "known_share", "known_unit", "list_length", "query_budget", "aux_share",
                        "item_overlap")
    success = Success("agr_at_{k}", "the clone's agreement with the target's top-K lists")

    def cell_module(self, cell: Cell) -> ModuleType:
        return sequence_cells if cell.sequential else cells


register_family(Stealing())
