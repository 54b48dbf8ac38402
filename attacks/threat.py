"""What an attacker is granted: the threat model's knowledge, and the view of data it implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp


KNOWN_UNITS = ("users", "interactions")


@dataclass(frozen=True)
class Knowledge:
    """Threat-model knobs a grid can sweep; every field is logged as a tag."""

    known_share: float = 0.1  # share of the target's training data the attacker has, counted in...
    known_unit: str = "users"  # ...users (each with all its interactions) or single interactions
    list_length: int = 50  # K: length of each list the oracle returns
    query_budget: int | None = None  # queries (users) the attacker may ask; None = all known users
    aux_share: float = 1.0  # share of the auxiliary users whose data the attacker has
    item_overlap: float = 1.0  # share of the items that appear in the attacker's auxiliary data

    def __post_init__(self):
        for name in ("aux_share", "item_overlap"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0 < self.known_share <= 1:
            raise ValueError(f"known_share must be in (0, 1], got {self.known_share}")
        if self.known_unit not in KNOWN_UNITS:
            raise ValueError(f"known_unit must be one of {KNOWN_UNITS}, got {self.known_unit!r}")
        if self.list_length < 1:
            raise ValueError(f"list_length must be >= 1, got {self.list_length}")
        if self.query_budget is not None and self.query_budget < 0:
            raise ValueError(f"query_budget must be >= 0 or null, got {self.query_budget}")


@dataclass(frozen=True)
class AttackerView:
    """The only data an attack receives. Row r of `known_interactions` is oracle user `known_users[r]`."""

    n_items: int
    known_users: np.ndarray
    known_interactions: sp.csr_matrix
    knowledge: Knowledge
    auxiliary: sp.csr_matrix | None = None  # the auxiliary users' interactions the attacker holds
    auxiliary_model: Any = None  # the attacker's own model of the clone's architecture, fit on them

    sequential: ClassVar[bool] = False

    @property
    def n_known(self) -> int:
        return len(self.known_users)

    def query_keys(self, rows: np.ndarray) -> np.ndarray:
        """What the oracle takes for these known users: their user ids."""
        return self.known_users[rows]

    def contexts(self, rows: np.ndarray) -> np.ndarray:
        """What the clone scores for them: its own user rows."""
        return np.asarray(rows, dtype=np.int64)


@dataclass(frozen=True)
class SequenceView:
    """What an attack on a sequential recommender is granted. Data-free extraction uses only the
    item count; `known_sequences` are some target users' training histories (the stealing
    family's partial target data), and both the oracle and the clone take them as queries."""

    n_items: int
    knowledge: Knowledge
    known_sequences: Any = None  # harness.data.sequences.Sequences, row r = known user r
    known_users: np.ndarray | None = None
    auxiliary_model: Any = None
    sequential: ClassVar[bool] = True

    @property
    def n_known(self) -> int:
        return 0 if self.known_sequences is None else len(self.known_sequences)

    def query_keys(self, rows: np.ndarray) -> np.ndarray:
        """The known users' sequences, left-padded with the id `n_items` to their longest."""
        rows = np.asarray(rows, dtype=np.int64)
        width = max(1, int(self.known_sequences.lengths()[rows].max(initial=1)))
        return self.known_sequences.padded(rows, width, self.n_items).numpy()

    contexts = query_keys  # a sequential clone scores the same sequences
