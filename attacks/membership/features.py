"""The attacker's features (Zhang et al., CCS 2021): item vectors learned from the
vectorization part, and per user the difference between the centre of their history and the
centre of the list they were served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from recsec.attacks.membership.base import PartFeatures, single_threaded

if TYPE_CHECKING:
    from recsec.attacks.membership.recommendations import ServedLists

WEIGHTS = ("uniform", "rank")


@dataclass(frozen=True)
class ItemVectors:
    """Item vectors [n_items, dim]; `known[i]` is False for items the vectorization data never
    saw, whose rows are zero and which every centre leaves out."""

    vectors: np.ndarray
    known: np.ndarray

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


def factorize_items(matrix: sp.csr_matrix, dim: int = 100, *, seed: int = 0,
                    power_iterations: int = 4) -> ItemVectors:
    """Item vectors from a rank-`dim` truncated SVD of the binary users x items matrix.

    X ~ U S V^T; an item's vector is its row of V S^(1/2), the item half of a factorization
    X ~ (U S^(1/2)) (V S^(1/2))^T, as a latent factor model would learn (the paper uses LFM).
    Randomized SVD (Halko et al., 2011) with a seeded test matrix: same seed, same vectors.
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    x = sp.csr_matrix(matrix, dtype=np.float64)
    x.data[:] = 1
    n_users, n_items = x.shape
    rank = min(dim, n_users, n_items)
    generator = torch.Generator().manual_seed(seed)

    def gram_times(block: torch.Tensor) -> torch.Tensor:  # X^T X block, with scipy's sparse products
        return torch.from_numpy(x.T @ (x @ block.numpy()))

    with single_threaded():
        # Range of X^T (item space), refined by power iterations, orthonormalized at every step.
        basis = torch.randn(n_items, rank + 10, generator=generator, dtype=torch.float64)
        for _ in range(1 + power_iterations):
            basis = torch.linalg.qr(gram_times(basis)).Q
        # X Q = U S W^T, so X's right singular vectors are V = Q W.
        _, s, vt = torch.linalg.svd(torch.from_numpy(x @ basis.numpy()), full_matrices=False)
        item_space = basis @ vt[:rank].T
    vectors = np.zeros((n_items, dim), dtype=np.float32)
    vectors[:, :rank] = (item_space * s[:rank].sqrt()).numpy()
    known = np.diff(sp.csc_matrix(x).indptr) > 0
    vectors[~known] = 0
    return ItemVectors(vectors, known)


def rank_weights(k: int) -> np.ndarray:
    """(k - j) / (k (k + 1) / 2) for ranks j = 0..k-1: linear in the rank, summing to 1; for
    k = 100 these are the paper's (100 - j) / 5050 (with j from 0)."""
    return (k - np.arange(k)) / (k * (k + 1) / 2)


def difference_vectors(
    items: ItemVectors, histories: sp.csr_matrix, lists: np.ndarray, weights: str = "uniform"
) -> np.ndarray:
    """Per row: mean vector of the history's items minus the weighted centre of the list's items.

    `histories` row r and `lists[r]` (best first) belong to the same user. Unknown items are left
    out of both centres and the remaining list weights renormalized (as the DL-MIA code skips
    items without a vector); a centre with no known item is zero.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    lists = np.asarray(lists, dtype=np.int64)
    if lists.ndim != 2 or lists.shape[0] != histories.shape[0]:
        raise ValueError(f"need one list per history row: {histories.shape[0]} histories, lists {lists.shape}")
    known = items.known.astype(np.float64)

    history = sp.csr_matrix(histories, dtype=np.float64)
    history.data[:] = 1
    history_counts = history @ known
    history_centre = (history @ items.vectors.astype(np.float64)) / np.maximum(history_counts, 1)[:, None]

    k = lists.shape[1]
    rank_w = np.full(k, 1.0 / k) if weights == "uniform" else rank_weights(k)
    w = rank_w[None, :] * known[lists]  # [n, k]
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    list_centre = np.einsum("nk,nkd->nd", w, items.vectors[lists].astype(np.float64))
    return (history_centre - list_centre).astype(np.float32)


def part_features(items: ItemVectors, history: sp.csr_matrix, served: "ServedLists",
                  weights: str = "uniform") -> PartFeatures:
    """The served users' difference vectors; `history` rows are indexed by user id."""
    vectors = difference_vectors(items, history[served.users], served.lists, weights)
    return PartFeatures(served.users, vectors, served.labels)
