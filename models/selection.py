"""Epoch selection as NCF's leave-one-out code does it (and DL-Attack's, which inherits it): after
every epoch, the hit ratio of each user's held-out item ranked among it and 99 sampled items the
user never interacted with; the best epoch's weights are kept.

This selects on the test items themselves when those are what is held out, as the published
code does: a protocol to reproduce, not one to recommend."""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp
import torch

from recsec.models.base import Recommender


def sampled_candidates(seen: sp.csr_matrix, users: np.ndarray, heldout: np.ndarray, n_negatives: int,
                       rng: np.random.Generator) -> np.ndarray:
    """[len(users), 1 + n_negatives]: each user's held-out item, then `n_negatives` distinct items
    outside `seen` (everything the user interacted with, held-out item included)."""
    n_items = seen.shape[1]
    out = np.empty((len(users), 1 + n_negatives), dtype=np.int64)
    out[:, 0] = heldout
    for row, user in enumerate(users):
        unseen = np.setdiff1d(np.arange(n_items), seen.indices[seen.indptr[user]:seen.indptr[user + 1]])
        unseen = unseen[unseen != heldout[row]]
        if len(unseen) < n_negatives:
            raise ValueError(f"user {user} leaves {len(unseen)} items it never had, fewer than the "
                             f"{n_negatives} sampled for epoch selection")
        out[row, 1:] = rng.choice(unseen, n_negatives, replace=False)
    return out


@torch.no_grad()
def sampled_hit_ratio(model: Recommender, users: np.ndarray, candidates: np.ndarray, k: int = 10,
                      batch: int = 1024) -> float:
    """Share of users whose held-out item (column 0) ranks in the top k of its candidates (ties
    count against it)."""
    was_training = model.training
    model.eval()
    hits = 0
    for start in range(0, len(users), batch):
        u = torch.as_tensor(users[start:start + batch], device=model.device)
        c = torch.as_tensor(candidates[start:start + batch], device=model.device)
        scores = model.score_pairs(u, c)
        hits += int(((scores[:, 1:] >= scores[:, :1]).sum(dim=1) < k).sum())
    model.train(was_training)
    return hits / max(1, len(users))


class BestEpoch:
    """An epoch callback that keeps the weights of the epoch with the best sampled hit ratio."""

    def __init__(self, model: Recommender, users: np.ndarray, candidates: np.ndarray, k: int = 10):
        self.model, self.users, self.candidates, self.k = model, users, candidates, k
        self.best, self.best_epoch, self._state = -1.0, -1, None

    def __call__(self, epoch: int, loss: float) -> None:
        score = sampled_hit_ratio(self.model, self.users, self.candidates, self.k)
        if score > self.best:
            self.best, self.best_epoch = score, epoch
            self._state = copy.deepcopy(self.model.state_dict())

    def restore(self) -> Recommender:
        """Load the best epoch's weights (no epoch ran: the model as it is)."""
        if self._state is not None:
            self.model.load_state_dict(self._state)
        return self.model
