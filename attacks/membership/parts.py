"""A part of a membership experiment's users as data: their histories and what they were served.

- `PartData`: what the attacker holds of the target part: its users' histories and the item
  vectors it factorized itself (never the labels, never the lists: those it asks the oracle for);
- `LabelledPart`: a part whose labels are known, with the lists its recommender made under both
  serving protocols (the attacker's shadow part; the target part where it is served);
- `MembershipView`: what a membership attack is granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsec.attacks.membership.base import PartFeatures
from recsec.attacks.membership.features import ItemVectors, difference_vectors
from recsec.attacks.oracle import ServingContext
from recsec.attacks.threat import Knowledge


@dataclass(frozen=True)
class PartData:
    """A part's users (rows = positions in the part), their histories and the item vectors."""

    users: np.ndarray
    history: sp.csr_matrix
    items: ItemVectors

    def features(self, lists: np.ndarray, weights: str, labels: np.ndarray | None = None) -> PartFeatures:
        return PartFeatures(self.users, difference_vectors(self.items, self.history, lists, weights), labels)


@dataclass(frozen=True)
class LabelledPart(PartData):
    labels: np.ndarray  # 1 = member
    lists: np.ndarray  # the deployed protocol's
    published_lists: np.ndarray
    popularity: np.ndarray  # of the members' training interactions
    nonmember_popularity: np.ndarray

    def protocol_lists(self, protocol: str) -> np.ndarray:
        return self.published_lists if protocol == "published" else self.lists

    def context(self, protocol: str) -> ServingContext:
        """What the part's server knows. Under the published protocol a defense draws its popular
        pool from the non-members' interactions, as the published code's `recommend_defense` does."""
        popularity = self.nonmember_popularity if protocol == "published" else self.popularity
        return ServingContext(self.history, popularity, self.labels == 1)

    def served(self, defense, rng: np.random.Generator, protocol: str = "deployed") -> np.ndarray:
        """The lists the part's users see under `protocol` behind `defense` (rows = positions)."""
        lists = self.protocol_lists(protocol)
        if defense is None:
            return lists
        return defense(lists, np.arange(len(self.users)), self.context(protocol), rng)


@dataclass(frozen=True)
class MembershipView:
    """A membership attack's grant: its own shadow part (labelled: its shadow recommender trained
    on its members), the target part's users and histories, and, when the threat model says the
    attacker knows the target's output defense, that defense (its algorithm, not its state)."""

    shadow: LabelledPart
    target: PartData
    knowledge: Knowledge
    defense: Any = None

    @property
    def n_known(self) -> int:
        return len(self.target.users)
