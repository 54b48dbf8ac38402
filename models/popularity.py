"""Most-popular baseline: every user gets the items with the most training interactions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recsec.models.base import EpochCallback, Recommender
from recsec.models.registry import register_model


@dataclass(frozen=True)
class PopularityConfig:
    pass


@register_model("pop")
class MostPopular(Recommender):
    Config = PopularityConfig
    learnable = False

    def __init__(self, n_users: int, n_items: int, config: PopularityConfig = PopularityConfig()):
        super().__init__(n_users, n_items, config)
        self.register_buffer("counts", torch.zeros(n_items))

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.counts.unsqueeze(0).expand(len(users), -1).clone()

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.counts[items]

    def fit(self, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        self.check_train_shape(train)
        counts = np.asarray(train.sum(axis=0)).ravel()
        self.counts.copy_(torch.from_numpy(counts.astype(np.float32)))
        return self
