"""Item-based collaborative filtering (Sarwar et al., 2001), as the "ItemBase" target of Zhang et
al. (CCS 2021): cosine similarity between items' user columns, each item keeping its top-N
neighbours; a user's score for item j is the summed similarity of j to the items they have.

Nothing is learned by gradient. The neighbour table and the training histories are buffers, so
the model saves and loads like any other; `score_histories` scores any history, which is how a
user who was not in the training data is served (see attacks/membership/recommendations.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recsec.models.base import EpochCallback, Recommender
from recsec.models.config import check_fields
from recsec.models.registry import register_model

# Items per chunk when computing similarities: bounds the dense [chunk, n_items] block in memory.
_SIMILARITY_CHUNK = 1024


@dataclass(frozen=True)
class ItemCFConfig:
    neighbours: int = 100  # top-N most similar items kept per item

    def __post_init__(self):
        check_fields("itemcf", self, at_least_one=("neighbours",))


@register_model("itemcf")
class ItemCF(Recommender):
    fold_in = "histories"
    Config = ItemCFConfig
    learnable = False

    def __init__(self, n_users: int, n_items: int, config: ItemCFConfig = ItemCFConfig()):
        super().__init__(n_users, n_items, config)
        n_neighbours = min(config.neighbours, n_items)
        self.register_buffer("neighbour_ids", torch.zeros(n_items, n_neighbours, dtype=torch.int64))
        self.register_buffer("neighbour_sims", torch.zeros(n_items, n_neighbours))
        # Training histories as CSR arrays; `history_items` changes length with the data.
        self.register_buffer("history_indptr", torch.zeros(n_users + 1, dtype=torch.int64))
        self.register_buffer("history_items", torch.zeros(0, dtype=torch.int64))

    def fit(self, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        self.check_train_shape(train)
        ids, sims = top_neighbours(train, self.neighbour_ids.shape[1])
        self.neighbour_ids.copy_(ids)
        self.neighbour_sims.copy_(sims)
        train = sp.csr_matrix(train)
        self.history_indptr.copy_(torch.from_numpy(train.indptr.astype(np.int64)))
        self.history_items = torch.from_numpy(train.indices.astype(np.int64)).to(self.device)
        return self

    def score(self, users: torch.Tensor) -> torch.Tensor:
        starts, stops = self.history_indptr[users], self.history_indptr[users + 1]
        lengths = stops - starts
        # Positions of each user's items in history_items, built without a Python loop.
        offsets = torch.arange(int(lengths.sum()), device=users.device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths)
        items = self.history_items[torch.repeat_interleave(starts, lengths) + offsets]
        return self._score_rows(torch.repeat_interleave(torch.arange(len(users), device=users.device), lengths),
                                items, len(users))

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.score(users).gather(1, items)

    @torch.no_grad()
    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        """Scores of every item for arbitrary histories (rows of a CSR matrix): [n_rows, n_items]."""
        histories = sp.csr_matrix(histories)
        rows = np.repeat(np.arange(histories.shape[0]), np.diff(histories.indptr))
        return self._score_rows(torch.from_numpy(rows).to(self.device),
                                torch.from_numpy(histories.indices.astype(np.int64)).to(self.device),
                                histories.shape[0])

    def _score_rows(self, rows: torch.Tensor, items: torch.Tensor, n_rows: int) -> torch.Tensor:
        """sum over (row, item) pairs of item's neighbour similarities, scattered into [n_rows, n_items]."""
        scores = torch.zeros(n_rows * self.n_items, device=self.neighbour_sims.device)
        targets = rows.unsqueeze(1) * self.n_items + self.neighbour_ids[items]
        scores.index_add_(0, targets.ravel(), self.neighbour_sims[items].ravel())
        return scores.view(n_rows, self.n_items)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The history's length is the training data's: take the saved size before copying.
        saved = state_dict.get(prefix + "history_items")
        if saved is not None:
            self.history_items = torch.empty_like(saved, device=self.history_items.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def top_neighbours(matrix: sp.csr_matrix, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per item, the `n` most cosine-similar other items and their similarities: [n_items, n] each.

    Cosine over binary user columns: |U_i & U_j| / sqrt(|U_i| |U_j|). Items with fewer than `n`
    similar items get zero-similarity fillers, which add nothing to scores.
    """
    columns = sp.csc_matrix(matrix, dtype=np.float32)
    columns.data[:] = 1
    norms = np.sqrt(np.diff(columns.indptr)).astype(np.float32)
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    n_items = matrix.shape[1]
    ids = torch.empty(n_items, n, dtype=torch.int64)
    sims = torch.empty(n_items, n)
    for start in range(0, n_items, _SIMILARITY_CHUNK):
        stop = min(start + _SIMILARITY_CHUNK, n_items)
        block = torch.from_numpy((columns[:, start:stop].T @ columns).toarray())
        block *= torch.from_numpy(inverse[start:stop, None] * inverse[None, :])
        block[torch.arange(stop - start), torch.arange(start, stop)] = 0  # an item is not its own neighbour
        sims[start:stop], ids[start:stop] = torch.topk(block, n, dim=1)
    return ids, sims
