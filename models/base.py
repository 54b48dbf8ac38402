"""The uniform recommender interface.

A model implements two scoring hooks: `score(users)` (every item, for ranking) and
`score_pairs(users, items)` (chosen items, for training losses). Ranking, seen-item exclusion,
chunking, devices and save/load are written once here.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsec.models.ranking import recommend_top_k

# Called after each epoch with (epoch index, mean training loss); used for progress and logging.
EpochCallback = Callable[[int, float], None]


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`table[index]` (any index shape) with a repeatable backward.

    The backward of advanced indexing (`index_put_` with accumulate) adds repeated rows in an
    order that depends on thread scheduling once a batch is large enough to be split, so two
    identical fits on a multi-core CPU differ in the last bits and then drift apart.
    `index_select`'s backward (`index_add_`) adds them in index order.
    """
    return table.index_select(0, index.reshape(-1)).view(*index.shape, *table.shape[1:])


def normal_init_(tables, generator: torch.Generator, std: float) -> None:
    """Seeded N(0, std^2) initialization of embedding tables, in place (no autograd)."""
    with torch.no_grad():
        for table in tables:
            table.copy_(torch.randn(table.shape, generator=generator, device=generator.device) * std)


class Recommender(nn.Module):
    name: ClassVar[str]
    Config: ClassVar[type]
    # Users scored at once in full ranking; models whose score() is heavier than a matmul lower it.
    ranking_batch_size: ClassVar[int] = 1024
    # False for models with nothing to learn by gradient (e.g. most-popular): they cannot be clones.
    learnable: ClassVar[bool] = True
    # The loss fit() optimizes ("bpr", "bce"), or None when fit() is not gradient training.
    objective: ClassVar[str | None] = None
    # What it scores: "users" (user ids; sequential models score "sequences", visual ones "images").
    input_kind: ClassVar[str] = "users"
    # It can continue from another fit's weights (`warm_fit`): a poisoned retraining may start warm.
    can_warm_start: ClassVar[bool] = False
    # How it scores a user it never trained on, from their history: "histories" (its own
    # `score_histories`), "factors" (a user vector solved against `item_factors`, plus
    # `item_offsets()`), or None (it cannot).
    fold_in: ClassVar[str | None] = None

    def __init__(self, n_users: int, n_items: int, config):
        super().__init__()
        if n_users <= 0 or n_items <= 0:
            raise ValueError(f"need at least one user and one item, got {n_users} x {n_items}")
        self.n_users = n_users
        self.n_items = n_items
        self.config = config

    def item_offsets(self) -> torch.Tensor | None:
        """A per-item score added to every user's (LMF's item bias), or None."""
        return None

    # -- hooks a model implements -------------------------------------------------------------
    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: [len(users), n_items]."""
        raise NotImplementedError

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of `items` [b, m] for `users` [b]: [b, m]. Differentiable."""
        raise NotImplementedError

    def fit(self, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        """Train on a users x items binary matrix, from a seeded initialization; returns self."""
        raise NotImplementedError

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Re-draw every learned weight from `generator` (so equal seeds give equal models)."""

    # -- item-table hooks: what lets attacks fuse or initialize item embeddings (PTA, Pre) ------
    def item_tables(self) -> dict[str, torch.Tensor]:
        """Item embedding tables by name, [n_items, d] each (empty: the model has none)."""
        return {}

    def user_vectors(self, users: torch.Tensor) -> dict[str, torch.Tensor]:
        """For each item table, the user-side vector that meets it: [len(users), d]."""
        return {}

    def score_with_item_vectors(
        self, users: torch.Tensor, items: torch.Tensor, vectors: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """`score_pairs`, with the item tables' rows replaced by `vectors` ([b, m, d] per table)."""
        raise NotImplementedError(f"{self.name} does not support item-vector substitution")

    def load_item_tables(self, tables: dict[str, torch.Tensor]) -> None:
        """Overwrite item tables (e.g. with an auxiliary model's) in place."""
        own = self.item_tables()
        with torch.no_grad():
            for name, table in tables.items():
                own[name].copy_(table.to(own[name].device))

    # -- written once for every model ---------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for tensor in list(self.parameters()) + list(self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def check_train_shape(self, train: sp.csr_matrix) -> None:
        if train.shape != (self.n_users, self.n_items):
            raise ValueError(
                f"{self.name}: training matrix is {train.shape[0]} x {train.shape[1]}, "
                f"model was built for {self.n_users} x {self.n_items}"
            )

    @torch.no_grad()
    def recommend(
        self,
        users: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Top-k item ids per user, best first: int64 [len(users), k].

        `exclude` is a users x items matrix (rows indexed by user id) whose entries are never
        recommended, normally the user's training interactions.
        """
        was_training = self.training
        self.eval()
        try:
            chunk = batch_size or self.ranking_batch_size
            return recommend_top_k(self.score, np.asarray(users), k, exclude, self.device, chunk)
        finally:
            self.train(was_training)

    def to_payload(self) -> dict:
        return {
            "model": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "config": dataclasses.asdict(self.config),
            "state": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
