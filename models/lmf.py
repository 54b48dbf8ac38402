"""LMF: logistic matrix factorization (Johnson, 2014), for implicit feedback.

p(u likes i) = sigmoid(x_u . y_i + b_u + b_i), fit by maximizing the log-likelihood of observed
interactions against sampled unobserved ones. Deviation from the paper: Johnson weights each
positive by a confidence alpha * count and uses all unobserved pairs with AdaGrad; interactions
here are binary, so positives have equal weight, `negatives` unobserved items are sampled per
positive, and Adam is used (the stealing paper's optimizer).
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch
from torch import nn

from recsec.models.base import EpochCallback, Recommender, gather_rows, normal_init_
from recsec.models.config import check_fields
from recsec.models.registry import register_model
from recsec.models.sampling import make_generator
from recsec.models.training import train_sampled


@dataclass(frozen=True)
class LMFConfig:
    dim: int = 64
    epochs: int = 30
    batch_size: int = 2048
    lr: float = 1e-3
    negatives: int = 1
    weight_decay: float = 0.0
    init_std: float = 0.1

    def __post_init__(self):
        check_fields("lmf", self, at_least_one=("dim", "epochs", "batch_size", "negatives"),
                     positive=("lr", "init_std"), non_negative=("weight_decay",))


@register_model("lmf")
class LMF(Recommender):
    Config = LMFConfig
    objective = "bce"  # what fit() optimizes
    fold_in = "factors"

    def __init__(self, n_users: int, n_items: int, config: LMFConfig = LMFConfig()):
        super().__init__(n_users, n_items, config)
        self.user_factors = nn.Parameter(torch.empty(n_users, config.dim))
        self.item_factors = nn.Parameter(torch.empty(n_items, config.dim))
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.reset_parameters(make_generator(0, torch.device("cpu")))

    def reset_parameters(self, generator: torch.Generator) -> None:
        normal_init_((self.user_factors, self.item_factors), generator, self.config.init_std)
        with torch.no_grad():
            self.user_bias.zero_()
            self.item_bias.zero_()

    def item_offsets(self) -> torch.Tensor:
        return self.item_bias  # the user bias does not rank

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_factors[users] @ self.item_factors.T + self.user_bias[users, None] + self.item_bias

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.score_with_item_vectors(users, items, {"item": gather_rows(self.item_factors, items)})

    def item_tables(self) -> dict[str, torch.Tensor]:
        return {"item": self.item_factors}

    def user_vectors(self, users: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"item": gather_rows(self.user_factors, users)}

    def score_with_item_vectors(self, users, items, vectors):
        dots = (gather_rows(self.user_factors, users).unsqueeze(1) * vectors["item"]).sum(-1)
        return dots + gather_rows(self.user_bias, users)[:, None] + gather_rows(self.item_bias, items)

    def fit(self, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        cfg = self.config
        return train_sampled(self, train, objective="bce", epochs=cfg.epochs, batch_size=cfg.batch_size,
                             lr=cfg.lr, negatives=cfg.negatives, weight_decay=cfg.weight_decay,
                             seed=seed, on_epoch=on_epoch)
