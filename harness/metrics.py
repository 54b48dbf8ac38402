"""Pure metric functions over ranked lists. No model, no I/O: lists in, numbers out.

Conventions (documented in the README): lists are int arrays [n_users, >=k], best first;
held-out items are a CSR matrix whose row r belongs to list r; users without held-out items are
left out of the averages.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def agreement_at_k(reference: np.ndarray, candidate: np.ndarray, k: int) -> float:
    """Mean over users of |top-k(reference) & top-k(candidate)| / k (order inside top-k ignored)."""
    reference, candidate = _check_lists(reference, k), _check_lists(candidate, k)
    if reference.shape[0] != candidate.shape[0]:
        raise ValueError(f"agreement: {reference.shape[0]} reference lists vs {candidate.shape[0]} candidates")
    if reference.shape[0] == 0:
        return float("nan")
    ref, cand = np.sort(reference[:, :k], axis=1), candidate[:, :k]
    # For each candidate item, is it in the (sorted) reference row? Vectorized via searchsorted.
    offset = (np.arange(len(ref)) * (max(ref.max(), cand.max()) + 1))[:, None]
    flat_ref = (ref + offset).ravel()
    flat_cand = (cand + offset).ravel()
    pos = np.searchsorted(flat_ref, flat_cand).clip(max=len(flat_ref) - 1)
    hits = (flat_ref[pos] == flat_cand).reshape(cand.shape).sum(axis=1)
    return float(np.mean(hits / k))


def hits_matrix(lists: np.ndarray, heldout: sp.csr_matrix, k: int) -> np.ndarray:
    """Boolean [n_users, k]: is the item at each rank one of the user's held-out items?"""
    lists = _check_lists(lists, k)[:, :k]
    if heldout.shape[0] != lists.shape[0]:
        raise ValueError(f"{lists.shape[0]} lists but held-out items for {heldout.shape[0]} users")
    rows = np.repeat(np.arange(lists.shape[0]), k)
    return np.asarray(heldout[rows, lists.ravel()]).reshape(lists.shape) > 0


def recall_at_k(lists: np.ndarray, heldout: sp.csr_matrix, k: int) -> float:
    """Mean of hits / |held-out| over users with held-out items."""
    n_relevant = np.diff(heldout.indptr)
    has = n_relevant > 0
    hits = hits_matrix(lists, heldout, k).sum(axis=1)
    return _mean(hits[has] / n_relevant[has])


def ndcg_at_k(lists: np.ndarray, heldout: sp.csr_matrix, k: int) -> float:
    """Binary-relevance NDCG: DCG over the top-k, divided by the DCG of an ideal top-k."""
    n_relevant = np.diff(heldout.indptr)
    has = n_relevant > 0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits_matrix(lists, heldout, k) * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return _mean(dcg[has] / ideal[has])


def hit_ratio_at_k(lists: np.ndarray, heldout: sp.csr_matrix, k: int) -> float:
    """Share of users (with held-out items) who have at least one held-out item in the top-k."""
    has = np.diff(heldout.indptr) > 0
    return _mean(hits_matrix(lists, heldout, k).any(axis=1)[has].astype(float))


def _check_lists(lists: np.ndarray, k: int) -> np.ndarray:
    lists = np.asarray(lists)
    if lists.ndim != 2:
        raise ValueError(f"ranked lists must be 2-D [users, k], got shape {lists.shape}")
    if lists.shape[1] < k:
        raise ValueError(f"lists have length {lists.shape[1]}, shorter than k={k}")
    return lists


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")
