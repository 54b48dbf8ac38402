"""The implicit-feedback matrix every model, split and attack works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Interactions:
    """A users x items binary matrix (CSR, float32 ones), ids 0..n-1.

    `timestamps`, when present, is aligned with `matrix.data` and orders each user's row in time
    (sequential datasets); `item_labels` maps internal item ids back to the raw ids.
    """

    matrix: sp.csr_matrix
    name: str = "interactions"
    timestamps: np.ndarray | None = None
    user_labels: np.ndarray | None = None
    item_labels: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not sp.isspmatrix_csr(self.matrix):
            raise TypeError("Interactions.matrix must be a scipy CSR matrix")

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def n_interactions(self) -> int:
        return self.matrix.nnz

    @property
    def density(self) -> float:
        return self.n_interactions / max(1, self.n_users * self.n_items)

    def item_popularity(self) -> np.ndarray:
        """Interactions per item (length n_items)."""
        return np.asarray(self.matrix.sum(axis=0)).ravel().astype(np.int64)

    def user_activity(self) -> np.ndarray:
        """Interactions per user (length n_users)."""
        return np.diff(self.matrix.indptr).astype(np.int64)

    def summary(self) -> dict:
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "density": self.density,
        }


def csr_from_pairs(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Binary CSR from (user, item) pairs; duplicates collapse to one interaction, rows sorted."""
    data = np.ones(len(users), dtype=np.float32)
    m = sp.csr_matrix((data, (np.asarray(users), np.asarray(items))), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m
