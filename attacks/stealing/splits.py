"""The stealing family's split: a target half that trains the target (its training data held out
per user for utility) and an auxiliary half the attacker may hold part of."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsec.harness.splits import holdout, keep_entries, split_users
from recsec.harness import streams

AUX_USERS = streams.purpose("users whose data the auxiliary model sees", 0xA0C)


@dataclass(frozen=True)
class StealingSplit:
    """Target and auxiliary halves over one item set; the target half's train/test holdout.

    Rows of `target_train`/`target_test` are target users 0..n_target-1 (the oracle's user ids);
    `target_users`/`aux_users` map them back to dataset user ids.
    """

    target_users: np.ndarray
    aux_users: np.ndarray
    target_train: sp.csr_matrix
    target_test: sp.csr_matrix
    auxiliary: sp.csr_matrix

    @property
    def n_items(self) -> int:
        return self.target_train.shape[1]


def stealing_split(matrix: sp.csr_matrix, target_share: float, holdout_share: float, seed: int) -> StealingSplit:
    rng = streams.DATA_SPLIT.rng(seed)
    target_users, aux_users = split_users(matrix.shape[0], target_share, rng)
    train, test = holdout(matrix[target_users], holdout_share, rng)
    return StealingSplit(target_users, aux_users, train, test, matrix[aux_users].tocsr())


def auxiliary_data(auxiliary: sp.csr_matrix, aux_share: float, item_overlap: float, seed: int) -> sp.csr_matrix:
    """The auxiliary interactions an attacker holds: a random `aux_share` of the auxiliary users
    (rows of the others are emptied, so ids stay aligned) restricted to a random `item_overlap`
    share of the items (the other items never appear in its data)."""
    rng = AUX_USERS.rng(seed)
    n_users, n_items = auxiliary.shape
    keep_users = np.zeros(n_users, dtype=bool)
    keep_users[rng.choice(n_users, size=max(1, round(aux_share * n_users)), replace=False)] = True
    keep_items = np.zeros(n_items, dtype=bool)
    keep_items[rng.choice(n_items, size=max(1, round(item_overlap * n_items)), replace=False)] = True
    coo = auxiliary.tocoo()
    return keep_entries(auxiliary, keep_users[coo.row] & keep_items[coo.col])
