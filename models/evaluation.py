"""Binary-classification scores shared by the harness (grading membership attacks) and the attacks
(picking a checkpoint on held-out shadow data): labels are 1 for members, 0 for non-members;
scores are higher for "more likely a member"."""

from __future__ import annotations

import numpy as np


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random member outscores a random
    non-member, ties counting one half (Mann-Whitney U from average ranks)."""
    scores, labels = check_binary(scores, labels)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
    u = ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, each tie group getting the mean of the ranks it spans."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]  # exclusive
    group_rank = (starts + ends + 1) / 2  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def check_binary(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, labels = np.asarray(values).ravel(), np.asarray(labels).ravel()
    if values.shape != labels.shape:
        raise ValueError(f"{len(values)} scores or predictions but {len(labels)} labels")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (non-member) or 1 (member)")
    return values, labels.astype(np.int64)
