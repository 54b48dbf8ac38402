"""Data-free model extraction of sequential recommenders (Yue et al.): the attacker knows only
the item catalogue, synthesizes sequences, queries their next-item lists and distils a
surrogate. Defenses: output defenses, or GRO trained into the target."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from recsec.attacks.stealing import sequence_cells
from recsec.harness.families.base import CORE_AXES, Success
from recsec.harness.families.registry import register_family
from recsec.attacks.stealing.family import ListsFamily

if TYPE_CHECKING:
    from recsec.attacks.oracle import Oracle
    from recsec.harness.grid import Cell
    from recsec.harness.records import TargetRecord
    from recsec.harness.serving import ServingState


class Extraction(ListsFamily):
    name = "extraction"
    axes = CORE_AXES + ("clone", "list_length", "query_budget")
    success = Success("agr_at_{k}", "the surrogate's agreement with the target's top-K next items")

    def cell_module(self, cell: Cell) -> ModuleType:
        return sequence_cells

    def grant(self, cell: Cell, state: ServingState, auxiliary: TargetRecord | None):
        return sequence_cells.data_free_view(cell, state, auxiliary)

    def oracle(self, cell: Cell, state: ServingState) -> Oracle:
        # The budget counts synthetic sequences: the attack says how many its settings query.
        budget = cell.attack_instance(clone=None).query_allowance(cell.knowledge)
        return sequence_cells.sequence_oracle(cell, state, budget)


register_family(Extraction())
