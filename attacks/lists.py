"""Fine-tuning a clone on queried top-K lists (the 'Q' of PTQ/PTAQ, and all of QSD).

Two parts, each BPR or hinge (configurable, per the paper's loss ablation):
- ranking: for consecutive items j, j' of a list, item j should score above j';
- recommended-item: every listed item should score above items sampled outside the list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.base import Recommender
from models.losses import PAIRWISE_LOSSES, pairwise_loss
from models.sampling import make_generator, sample_outside


@dataclass(frozen=True)
class ListLossConfig:
    ranking_loss: str = "bpr"
    item_loss: str = "hinge"
    margin: float = 0.5
    negatives: int = 1  # sampled outside the list per listed item
    epochs: int = 30
    lr: float = 1e-3
    batch_users: int = 256

    def __post_init__(self):
        for part in ("ranking_loss", "item_loss"):
            if getattr(self, part) not in PAIRWISE_LOSSES:
                raise ValueError(f"{part} must be one of {PAIRWISE_LOSSES}, got {getattr(self, part)!r}")
        if self.negatives < 1 or self.epochs < 0 or self.batch_users < 1:
            raise ValueError("negatives and batch_users must be >= 1, epochs >= 0")
        if self.lr <= 0 or self.margin < 0:
            raise ValueError("lr must be > 0 and margin >= 0")


def list_losses(model: Recommender, users: torch.Tensor, lists: torch.Tensor, cfg: ListLossConfig, generator) -> torch.Tensor:
    scores = model.score_pairs(users, lists)  # [b, K]
    ranking = pairwise_loss(cfg.ranking_loss, scores[:, :-1], scores[:, 1:], cfg.margin)
    outside = sample_outside(lists, model.n_items, cfg.negatives, generator)  # [b, K, n]
    outside_scores = model.score_pairs(users, outside.flatten(1)).view(outside.shape)
    items = pairwise_loss(cfg.item_loss, scores.unsqueeze(-1), outside_scores, cfg.margin)
    return ranking + items


def finetune_on_lists(
    model: Recommender, rows: np.ndarray, lists: np.ndarray, cfg: ListLossConfig, *, seed: int
) -> Recommender:
    """Train `model` (user row `rows[i]` served `lists[i]`, best first) on the list losses."""
    if len(rows) == 0 or cfg.epochs == 0:
        return model
    device = model.device
    generator = make_generator(seed, device)
    users = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(device)
    served = torch.from_numpy(np.asarray(lists, dtype=np.int64)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(users), generator=generator, device=device)
        for start in range(0, len(order), cfg.batch_users):
            batch = order[start : start + cfg.batch_users]
            loss = list_losses(model, users[batch], served[batch], cfg, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return model
