"""The threat-model base the built-in families share: the attacker's knowledge as the attacks
read it (`attacks.threat.Knowledge`), and the identity layout their cells were hashed with.

Each family declares only the axes it reads (a `ThreatModel` subclass in its `family.py`); an
axis it does not read takes `Knowledge`'s default in the attacks' view and in the cell's identity.
The identity keeps the layout of the cells hashed before families had typed threat models (the
six knowledge fields, the attacker's model under `clone`, the family's other axes under
`family_axes`, its sections by name), so that the cached targets and the records of earlier runs
keep their hashes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from recsec import defenses
from recsec.attacks.threat import Knowledge
from recsec.harness.errors import GridError
from recsec.harness.grid_schema import Component
from recsec.harness.threat_model import Budget, Length, Share, ThreatModel

if TYPE_CHECKING:
    from recsec.harness.data import Interactions
    from recsec.harness.grid_schema import Grid

KNOWLEDGE_FIELDS = tuple(f.name for f in dataclasses.fields(Knowledge))
DEFAULT = Knowledge()  # an axis's default, for the families whose threat model reads it
SAME = Component(name="same")  # the attacker's model is the target's architecture and settings

# The knowledge axes' types, with their meaning: a family's threat model declares those it reads.
KnownShare = Annotated[Share, Field(description="share of the target's training data the attacker holds")]
KnownUnit = Annotated[Literal["users", "interactions"],  # attacks.threat.KNOWN_UNITS
                      Field(description="what the known share counts: whole users or single interactions")]
ListLength = Annotated[Length, Field(description="length K of each list the oracle serves")]
QueryBudget = Annotated[Budget, Field(description="queries the attacker may make (null: as many as it knows)")]
AuxShare = Annotated[Share, Field(description="share of the auxiliary users whose data the attacker holds")]
ItemOverlap = Annotated[Share, Field(description="share of the items that occur in the auxiliary data")]


class FamilyThreat(ThreatModel):
    """A built-in family's threat model (see the module's docstring)."""

    list_axis = "list_length"  # tagged on every built-in cell (its default where not read)

    @property
    def knowledge(self) -> Knowledge:
        """The attacker's knowledge as the attacks read it (defaults where this family reads none)."""
        return Knowledge(**{name: getattr(self, name) for name in KNOWLEDGE_FIELDS if name in type(self).model_fields})

    def attacker_model(self, target: Component) -> Component:
        """The attacker's own model (a clone, a shadow, a surrogate: the `clone` axis, resolved
        when the grid expands); the target's where the family reads no `clone`."""
        return self.clone if "clone" in type(self).model_fields else target  # type: ignore[attr-defined]

    def own_axes(self) -> dict[str, Any]:
        """The family's axes beyond the knowledge and the attacker's model."""
        return {name: getattr(self, name) for name in self.axes() if name not in KNOWLEDGE_FIELDS and name != "clone"}

    def identity(self, target: Component) -> dict:
        own = self.own_axes()
        return {
            "clone": self.attacker_model(target).model_dump(),
            "knowledge": dataclasses.asdict(self.knowledge),
            **{name: getattr(self, name).identity() for name in self.sections},
            # Absent when empty, so that cells of families without axes of their own keep their hashes.
            **({"family_axes": dict(sorted(own.items()))} if own else {}),
        }

    def tags(self, target: Component) -> dict[str, Any]:
        knowledge = self.knowledge
        return {
            "clone": self.attacker_model(target).label(),
            **{name: getattr(knowledge, name) for name in KNOWLEDGE_FIELDS},
            "query_budget": "all" if knowledge.query_budget is None else knowledge.query_budget,
            **self.own_axes(),
        }


def check_output_defense_lists(grid: Grid, source: str) -> list[str]:
    """An output defense must be able to serve every list length of the grid (popular_mix cannot
    replace 25 items of a 10-item list)."""
    lengths = sorted(set(list_lengths(grid)))
    problems = []
    for j, defense in enumerate(grid.matrix.defense):
        if defense.name == "none" or defense.name not in defenses.defense_names() \
                or defenses.defense_class(defense.name).kind != "output":
            continue
        try:
            instance = defenses.create_defense(defense.name, **defense.params)
        except (TypeError, ValueError):
            continue  # a bad parameter: reported by the component check
        for k in lengths:
            try:
                instance.check_list_length(k)
            except ValueError as exc:
                problems.append(f"{source}: matrix.defense[{j}]: {exc} (matrix.list_length)")
                break
    return problems


def check_list_lengths_fit(grid: Grid, data: Interactions, source: str) -> None:
    """A served list must leave items outside it (a top-K of every item ranks nothing)."""
    lengths = list_lengths(grid)
    too_long = [k for k in lengths if k >= data.n_items]
    if too_long:
        raise GridError(f"{source}: matrix.list_length: {too_long[0]} is not below the "
                        f"{data.n_items} items of dataset {grid.dataset.name!r}")


def list_lengths(grid: Grid) -> list[int]:
    """The served list lengths the grid sweeps (the default where it sweeps none)."""
    return (grid.matrix.model_extra or {}).get("list_length", [DEFAULT.list_length])
