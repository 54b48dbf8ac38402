"""The poisoning family's data: every user is a real user of the target; each keeps one held-out
item (leave-one-out: the latest by time where the data has timestamps, else a seeded random one)
or a share of its items (`holdout`), and the target items are drawn from a popularity stratum."""

from __future__ import annotations

import typing
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsec.harness.data import Interactions
from recsec.harness.data.sequences import sequences_from_interactions
from recsec.harness.splits import holdout
from recsec.harness import streams

HELDOUT_ITEM = streams.purpose("poisoning: each user's held-out item where there are no timestamps", 0x100)
TARGET_ITEMS = streams.purpose("poisoning: the target items", 0x7A6)

Stratum = typing.Literal["random", "unpopular", "popular"]  # the popularity third target items come from
STRATA = typing.get_args(Stratum)


@dataclass(frozen=True)
class PoisonSplit:
    train: sp.csr_matrix  # real users x items
    test: sp.csr_matrix  # each real user's held-out items
    heldout_item: np.ndarray  # leave-one-out: each user's held-out item (-1: none); holdout: all -1

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]


def poison_split(data: Interactions, kind: str, holdout_share: float, seed: int) -> PoisonSplit:
    if kind == "holdout":
        train, test = holdout(data.matrix, holdout_share, streams.DATA_SPLIT.rng(seed))
        return PoisonSplit(train, test, np.full(data.n_users, -1, dtype=np.int64))
    return leave_one_out(data, seed)


def leave_one_out(data: Interactions, seed: int) -> PoisonSplit:
    """Each user with at least two items holds out one: its latest (ties: the last in the time
    order, which keeps item-id order among equal times), or with no timestamps a random one."""
    matrix = data.matrix
    degree = np.diff(matrix.indptr)
    heldout = np.full(data.n_users, -1, dtype=np.int64)
    eligible = degree >= 2
    if data.timestamps is not None:
        seqs = sequences_from_interactions(data)
        last = seqs.offsets[1:] - 1
        heldout[eligible] = seqs.items[last[eligible]]
    else:
        rng = HELDOUT_ITEM.rng(seed)
        pick = matrix.indptr[:-1] + (rng.random(data.n_users) * np.maximum(degree, 1)).astype(np.int64)
        heldout[eligible] = matrix.indices[pick[eligible]]
    users = np.flatnonzero(eligible)
    test = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, heldout[users])), shape=matrix.shape)
    train = (matrix - test).tocsr()
    train.eliminate_zeros()
    train.sort_indices()
    return PoisonSplit(train, test, heldout)


def choose_targets(train: sp.csr_matrix, count: int, stratum: str, seed: int) -> np.ndarray:
    """`count` distinct target items from a stratum of the items ranked by training popularity:
    `unpopular` the least popular third, `popular` the most popular third, `random` any item."""
    popularity = np.asarray(train.sum(axis=0)).ravel()
    order = np.argsort(popularity, kind="stable")  # least popular first, ties by item id
    third = max(count, len(order) // 3)
    pool = {"random": order, "unpopular": order[:third], "popular": order[-third:]}[stratum]
    rng = TARGET_ITEMS.rng(seed)
    return np.sort(rng.choice(pool, min(count, len(pool)), replace=False)).astype(np.int64)
