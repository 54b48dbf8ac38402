"""A cell: one complete, frozen experiment, as plain data.

Everything a worker needs is in it, resolved when the grid was expanded (`harness.grid_expand`):
its family's name, its threat model, and what its target and auxiliary model depend on (their
identities, as the family said). Nothing here looks anything up; the hashes are functions of the
data alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from recsec.harness import __version__
from recsec.harness.grid_schema import Component, DatasetConfig, SplitConfig, content_hash
from recsec.harness.threat_model import ThreatModel


@dataclasses.dataclass(frozen=True, eq=False)
class Cell:
    grid: str
    family: str  # the attack's family
    dataset: DatasetConfig
    split: SplitConfig
    target: Component  # params resolved with the grid's training defaults
    attack: Component
    defense: Component
    threat: ThreatModel  # the family's threat model at this cell (its sections included)
    seed: int
    metric_ks: tuple[int, ...]
    # Set by the family when the grid is expanded: what the target depends on (changing any of it
    # trains another target), and the attacker's auxiliary model (None: the attack needs none).
    target_identity: dict = dataclasses.field(default_factory=dict)
    auxiliary_identity: dict | None = None
    auxiliary_dataset: DatasetConfig | None = None  # what the auxiliary model trains on

    @property
    def needs_auxiliary(self) -> bool:
        return self.auxiliary_identity is not None

    def axes(self) -> dict[str, Any]:
        """Axis values as shown in tables and tags (components by label)."""
        return {"target": self.target.label(), "attack": self.attack.label(), "defense": self.defense.label(),
                **self.threat.tags(self.target), "seed": self.seed}

    def normalized(self) -> dict:
        """Everything that makes the cell: its hash's content."""
        return {
            "dataset": self.dataset.model_dump(),
            "split": self.split.model_dump(),
            "target": self.target.model_dump(),
            "attack": self.attack.model_dump(),
            "defense": self.defense.model_dump(),
            "seed": self.seed,
            "metric_ks": list(self.metric_ks),
            **self.threat.identity(self.target),
        }

    def cell_hash(self, dataset_digest: str) -> str:
        return content_hash({"cell": self.normalized(), "data": dataset_digest, "code": __version__})

    def target_hash(self, dataset_digest: str) -> str:
        return content_hash({"target": self.target_identity, "data": dataset_digest, "code": __version__})

    def auxiliary_hash(self, dataset_digest: str) -> str:
        if self.auxiliary_identity is None:
            raise ValueError(f"{self.attack.name} needs no auxiliary model: its cell has no auxiliary hash")
        return content_hash({"auxiliary": self.auxiliary_identity, "data": dataset_digest, "code": __version__})
