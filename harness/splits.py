"""Seeded, user-level splits shared by the families: disjoint user sets, per-user holdout, the
attacker's known users."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def split_users(n_users: int, target_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random user sets: round(target_share * n) target users, the rest auxiliary."""
    if not 0 < target_share <= 1:
        raise ValueError(f"target_share must be in (0, 1], got {target_share}")
    order = rng.permutation(n_users)
    n_target = max(1, round(target_share * n_users))
    return np.sort(order[:n_target]), np.sort(order[n_target:])


def holdout(matrix: sp.csr_matrix, share: float, rng: np.random.Generator) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out floor(share * n_u) random interactions of each user (at least one when n_u >= 2).

    Vectorized: every interaction gets a random key; sorting by (row, key) gives each row a random
    order, and the first n_test positions of each row go to the test matrix.
    """
    if not 0 <= share < 1:
        raise ValueError(f"holdout share must be in [0, 1), got {share}")
    matrix = matrix.tocsr()
    counts = np.diff(matrix.indptr)
    n_test = np.floor(share * counts).astype(np.int64)
    if share > 0:
        n_test = np.where(counts >= 2, np.maximum(n_test, 1), 0)
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((rng.random(matrix.nnz), rows))
    rank_in_row = np.empty(matrix.nnz, dtype=np.int64)
    rank_in_row[order] = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], counts)
    is_test = rank_in_row < n_test[rows]
    return keep_entries(matrix, ~is_test), keep_entries(matrix, is_test)


def choose_known_users(n_target: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """The target users the attacker knows: round(share * n_target), at least one, sorted."""
    if not 0 < share <= 1:
        raise ValueError(f"the known share must be in (0, 1], got {share}")
    n_known = max(1, round(share * n_target))
    return np.sort(rng.choice(n_target, size=n_known, replace=False))


def choose_known(train: sp.csr_matrix, share: float, unit: str, rng: np.random.Generator
                 ) -> tuple[np.ndarray, sp.csr_matrix]:
    """What the attacker knows of the target's training data: (known users, their known rows).

    unit "users": a random `share` of the users, each with all its interactions (the paper's
    default). unit "interactions": a random `share` of all interactions; the known users are
    those with at least one, and their rows hold only the known interactions.
    """
    if unit == "users":
        users = choose_known_users(train.shape[0], share, rng)
        return users, train[users]
    if unit != "interactions":
        raise ValueError(f"known unit must be 'users' or 'interactions', got {unit!r}")
    if not 0 < share <= 1:
        raise ValueError(f"the known share must be in (0, 1], got {share}")
    keep = np.zeros(train.nnz, dtype=bool)
    keep[rng.choice(train.nnz, size=max(1, round(share * train.nnz)), replace=False)] = True
    known = keep_entries(train, keep)
    users = np.flatnonzero(np.diff(known.indptr))
    return users, known[users]


def keep_entries(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    coo = matrix.tocoo()
    out = sp.csr_matrix(
        (coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape, dtype=np.float32
    )
    out.sort_indices()
    return out


def keep_rows(matrix: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    """`matrix` with every row not in `users` emptied; same shape and ids."""
    keep = np.zeros(matrix.shape[0], dtype=np.float32)
    keep[np.asarray(users, dtype=np.int64)] = 1
    out = (sp.diags(keep) @ matrix).tocsr()
    out.eliminate_zeros()
    out.sort_indices()
    return out
