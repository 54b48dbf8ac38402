"""Data-free model extraction of sequential recommenders (Yue et al.): the attacker knows only
the item catalogue, synthesizes sequences, queries their next-item lists and distils a
surrogate. Defenses: output defenses, or GRO trained into the target."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from recsec.attacks.family_threat import DEFAULT, SAME, FamilyThreat, ListLength, QueryBudget
from recsec.attacks.stealing import sequence_cells
from recsec.harness.families.base import Success, configured_attack
from recsec.harness.families.registry import register_family
from recsec.harness.grid_schema import Component
from recsec.attacks.stealing.family import ListsFamily

if TYPE_CHECKING:
    from recsec.attacks.oracle import Oracle
    from recsec.harness.cell import Cell
    from recsec.harness.records import TargetRecord
    from recsec.harness.serving_state import ServingState


class ExtractionThreat(FamilyThreat):
    """Yue et al.'s data-free attacker: the item catalogue, a surrogate, a query budget."""

    clone: Component = Field(SAME, description="the surrogate's architecture")
    list_length: ListLength = DEFAULT.list_length
    query_budget: Annotated[QueryBudget, Field(description="synthetic sequences the attacker may query (null: as "
                                                           "many as the attack's settings make)")] = DEFAULT.query_budget


class Extraction(ListsFamily):
    name = "extraction"
    threat_model = ExtractionThreat
    success = Success("agr_at_{k}", "the surrogate's agreement with the target's top-K next items")

    def cell_module(self, cell: Cell) -> ModuleType:
        return sequence_cells

    def grant(self, cell: Cell, state: ServingState, auxiliary: TargetRecord | None):
        return sequence_cells.data_free_view(cell, state, auxiliary)

    def oracle(self, cell: Cell, state: ServingState) -> Oracle:
        # The budget counts synthetic sequences: the attack says how many its settings query.
        budget = configured_attack(cell, clone=None).query_allowance(cell.threat.knowledge)
        return sequence_cells.sequence_oracle(cell, state, budget)


register_family(Extraction())
