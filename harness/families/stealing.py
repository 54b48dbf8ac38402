"""Model stealing (Zhu et al.): the attacker knows some target users' data, queries their top-K
lists and fits a clone. Against user-id targets (`user_ids`) or sequential ones (`sequences`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.data.sequences import sequences_from_interactions
from harness.families import sequences, user_ids
from harness.families.base import CORE_AXES, Family, Success
from harness.families.registry import register_family

if TYPE_CHECKING:
    from harness.data import Interactions
    from harness.grid import Cell, Grid
    from harness.records import CellRecord, TargetRecord


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

    def runner(self, cell: Cell):
        return sequences if cell.sequential else user_ids

    def runner_modules(self, cell: Cell) -> tuple[str, ...]:
        return (self.runner(cell).__name__,)

    def train_target(self, cell: Cell, data: Interactions, target_hash: str, device: str) -> TargetRecord:
        return self.runner(cell).train_target(cell, data, target_hash, device)

    def train_auxiliary(self, cell: Cell, data: Interactions, auxiliary_hash: str, device: str) -> TargetRecord:
        return self.runner(cell).train_auxiliary(cell, data, auxiliary_hash, device)

    def run_cell(self, cell: Cell, data: Interactions, target: TargetRecord, cell_hash: str, device: str,
                 auxiliary: TargetRecord | None = None) -> CellRecord:
        return self.runner(cell).run_cell(cell, data, target, cell_hash, device, auxiliary=auxiliary)


register_family(Stealing())
