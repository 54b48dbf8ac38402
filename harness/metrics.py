"""Pure metric functions over ranked lists. No model, no I/O: lists in, numbers out.

Conventions (documented in the README): lists are int arrays [n_users, >=k], best first;
held-out items are a CSR matrix whose row r belongs to list r; users without held-out items are
left out of the averages.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# ROC AUC lives with the models (attacks select checkpoints by it; they never import the harness).
from recsec.models.evaluation import check_binary as _check_binary, roc_auc  # noqa: F401


def agreement_at_k(reference: np.ndarray, candidate: np.ndarray, k: int) -> float:
    """Mean over users of |top-k(reference) & top-k(candidate)| / k (order inside top-k ignored)."""
    return _mean(agreement_per_list(reference, candidate, k))


def agreement_per_list(reference: np.ndarray, candidate: np.ndarray, k: int) -> np.ndarray:
    """|top-k(reference) & top-k(candidate)| / k for each pair of lists."""
    reference, candidate = _check_lists(reference, k), _check_lists(candidate, k)
    if reference.shape[0] != candidate.shape[0]:
        raise ValueError(f"agreement: {reference.shape[0]} reference lists vs {candidate.shape[0]} candidates")
    if reference.shape[0] == 0:
        return np.zeros(0)
    ref, cand = np.sort(reference[:, :k], axis=1), candidate[:, :k]
    # For each candidate item, is it in the (sorted) reference row? Vectorized via searchsorted.
    offset = (np.arange(len(ref)) * (max(ref.max(), cand.max()) + 1))[:, None]
    flat_ref = (ref + offset).ravel()
    flat_cand = (cand + offset).ravel()
    pos = np.searchsorted(flat_ref, flat_cand).clip(max=len(flat_ref) - 1)
    hits = (flat_ref[pos] == flat_cand).reshape(cand.shape).sum(axis=1)
    return hits / k


def hits_matrix(lists: np.ndarray, heldout: sp.csr_matrix, k: int) -> np.ndarray:
    """Boolean [n_users, k]: is the item at each rank one of the user's held-out items?"""
    lists = _check_lists(lists, k)[:, :k]
    if heldout.shape[0] != lists.shape[0]:
        raise ValueError(f"{lists.shape[0]} lists but held-out items for {heldout.shape[0]} users")
    rows = np.repeat(np.arange(lists.shape[0]), k)
    return np.asarray(heldout[rows, lists.ravel()]).reshape(lists.shape) > 0


def recall_at_k(lists: np.ndarray, heldout: sp.csr_matrix, k: int) -> float:
    """Mean of hits / |held-out| over users with held-out items."""
    return _mean(recall_per_user(lists, heldout, k)[1])


def recall_per_user(lists: np.ndarray, heldout: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(the rows with held-out items, each one's hits / |held-out| in its top-k)."""
    n_relevant = np.diff(heldout.indptr)
    has = np.flatnonzero(n_relevant > 0)
    hits = hits_matrix(lists, heldout, k).sum(axis=1)
    return has, hits[has] / n_relevant[has]


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


# -- a recommender's utility: its lists against held-out items ----------------------------------

def utility_metrics(lists: np.ndarray, heldout, ks, prefix: str = "") -> dict[str, float]:
    out = {}
    for k in ks:
        if k <= lists.shape[1]:
            out[f"{prefix}recall_at_{k}"] = recall_at_k(lists, heldout, k)
            out[f"{prefix}ndcg_at_{k}"] = ndcg_at_k(lists, heldout, k)
            out[f"{prefix}hr_at_{k}"] = hit_ratio_at_k(lists, heldout, k)
    return out


def next_item_metrics(lists: np.ndarray, targets: np.ndarray, ks, prefix: str = "",
                      ranks: np.ndarray | None = None) -> dict[str, float]:
    out = {}
    for k in ks:
        if k <= lists.shape[1]:
            out[f"{prefix}hr_at_{k}"] = hit_at_k_single(lists, targets, k)
            out[f"{prefix}ndcg_at_{k}"] = ndcg_at_k_single(lists, targets, k)
        if ranks is not None:
            hit = ranks < k
            out[f"{prefix}hr_at_{k}_sampled100"] = float(hit.mean())
            out[f"{prefix}ndcg_at_{k}_sampled100"] = float(np.where(hit, 1 / np.log2(ranks + 2), 0).mean())
    return out


def _check_lists(lists: np.ndarray, k: int) -> np.ndarray:
    lists = np.asarray(lists)
    if lists.ndim != 2:
        raise ValueError(f"ranked lists must be 2-D [users, k], got shape {lists.shape}")
    if lists.shape[1] < k:
        raise ValueError(f"lists have length {lists.shape[1]}, shorter than k={k}")
    return lists


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


# --------------------------------------------------------------------------- single target
# Leave-one-out evaluation holds out one item per user: with targets as an array these are one
# comparison instead of a sparse lookup per list entry.


def hit_at_k_single(lists: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Share of lists whose top-k holds that row's one target item (HR@k under leave-one-out)."""
    return _mean(hit_per_list_single(lists, targets, k))


def hit_per_list_single(lists: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """1 where a list's top-k holds its row's target item, else 0."""
    return _target_hits(lists, targets, k).any(axis=1).astype(float)


def ndcg_at_k_single(lists: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Mean of 1 / log2(rank + 1) for the target's 1-based rank when within the top-k, else 0
    (NDCG@k with one relevant item, whose ideal DCG is 1)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    return _mean((_target_hits(lists, targets, k) * discounts).sum(axis=1))


def _target_hits(lists: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    lists, targets = _check_lists(lists, k), np.asarray(targets)
    if targets.shape != (lists.shape[0],):
        raise ValueError(f"{lists.shape[0]} lists but targets of shape {targets.shape}")
    return lists[:, :k] == targets[:, None]


# --------------------------------------------------------------------------- membership inference
# Binary decisions over users: `labels` are 1 for members (the positive class), 0 for non-members;
# `scores` are higher for "more likely a member"; `pred` are 0/1 decisions.


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    pred, labels = _check_binary(pred, labels)
    return _mean((pred == labels).astype(float))


def precision(pred: np.ndarray, labels: np.ndarray) -> float:
    """Share of predicted members that are members (nan when nothing is predicted a member)."""
    pred, labels = _check_binary(pred, labels)
    return _mean(labels[pred == 1].astype(float))


def recall(pred: np.ndarray, labels: np.ndarray) -> float:
    """True-positive rate: share of members predicted members."""
    pred, labels = _check_binary(pred, labels)
    return _mean(pred[labels == 1].astype(float))


def balanced_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """(1 + TPR - FPR) / 2: the area under a one-threshold ROC curve, which the published MIA code
    prints as "AUC". It is not `roc_auc`; report both under their own names."""
    pred, labels = _check_binary(pred, labels)
    tpr = _mean(pred[labels == 1].astype(float))
    fpr = _mean(pred[labels == 0].astype(float))
    return (1 + tpr - fpr) / 2


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float = 0.01) -> float:
    """The highest TPR over thresholds whose FPR is at most `fpr` (0 when none qualifies).

    Thresholds sit between distinct scores, so tied scores are accepted or rejected together.
    """
    if not 0 <= fpr <= 1:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    scores, labels = _check_binary(scores, labels)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order] == 1)
    fp = np.cumsum(labels[order] == 0)
    last_of_tie = np.r_[scores[order][1:] != scores[order][:-1], True]
    ok = last_of_tie & (fp <= fpr * n_neg)
    return float(tp[ok].max() / n_pos) if ok.any() else 0.0
