"""Data-free model extraction of sequential recommenders (Yue et al.): the attacker knows only
the item catalogue, synthesizes sequences, queries their next-item lists and distils a
surrogate. Defenses: output defenses, or GRO trained into the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.families import sequences
from harness.families.base import CORE_AXES, Success
from harness.families.registry import register_family
from harness.families.stealing import ListsFamily

if TYPE_CHECKING:
    from harness.data import Interactions
    from harness.grid import Cell
    from harness.records import CellRecord, TargetRecord


class Extraction(ListsFamily):
    name = "extraction"
    axes = CORE_AXES + ("clone", "list_length", "query_budget")
    success = Success("agr_at_{k}", "the surrogate's agreement with the target's top-K next items")

    def runner_modules(self, cell: Cell) -> tuple[str, ...]:
        return (sequences.__name__,)

    def train_target(self, cell: Cell, data: Interactions, target_hash: str, device: str) -> TargetRecord:
        return sequences.train_target(cell, data, target_hash, device)

    def train_auxiliary(self, cell: Cell, data: Interactions, auxiliary_hash: str, device: str) -> TargetRecord:
        return sequences.train_auxiliary(cell, data, auxiliary_hash, device)

    def run_cell(self, cell: Cell, data: Interactions, target: TargetRecord, cell_hash: str, device: str,
                 auxiliary: TargetRecord | None = None) -> CellRecord:
        return sequences.run_cell(cell, data, target, cell_hash, device, auxiliary=auxiliary,
                                  grant=sequences.data_free_view)


register_family(Extraction())
