"""Learning a model from served top-K lists: the fine-tuning of PTQ/PTAQ and all of QSD (the
stealing family; data-free extraction distills as its own code does, in attacks/extraction/distill.py).

Two parts, each BPR or hinge (configurable, per the stealing paper's loss ablation):
- ranking: for consecutive items j, j' of a list, item j should score above j';
- recommended-item: every listed item should score above items sampled outside the list.

A list belongs to a *context*: a user row for general recommenders, an item sequence (prefix)
for sequential ones. Both reach the model through `score_pairs(contexts, items)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

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
        if self.negatives < 1 or (self.epochs is not None and self.epochs < 0) or self.batch_users < 1:
            raise ValueError("negatives and batch_users must be >= 1, epochs >= 0")
        if self.lr <= 0 or self.margin < 0:
            raise ValueError("lr must be > 0 and margin >= 0")


def list_losses(model, contexts: torch.Tensor, lists: torch.Tensor, cfg: ListLossConfig, generator) -> torch.Tensor:
    outside = sample_outside(lists, model.n_items, cfg.negatives, generator)  # [b, K, n]
    # One scoring call for listed and outside items: a sequential model encodes its context once.
    scores = model.score_pairs(contexts, torch.cat([lists, outside.flatten(1)], dim=1))
    listed, outside_scores = scores[:, : lists.shape[1]], scores[:, lists.shape[1] :].view(outside.shape)
    ranking = pairwise_loss(cfg.ranking_loss, listed[:, :-1], listed[:, 1:], cfg.margin)
    items = pairwise_loss(cfg.item_loss, listed.unsqueeze(-1), outside_scores, cfg.margin)
    return ranking + items


def finetune_on_lists(model, contexts, lists: np.ndarray, cfg: ListLossConfig, *, seed: int):
    """Train `model` on the list losses: context `contexts[i]` was served `lists[i]`, best first.

    `contexts` is an array (user rows [n], or sequences [n, L]) or any object with `len()` and
    indexing by a LongTensor of example ids that yields the batch's contexts (e.g. prefixes built
    on the fly, too many to hold at once)."""
    if len(contexts) == 0 or cfg.epochs == 0:
        return model
    device = model.device
    generator = make_generator(seed, device)
    if isinstance(contexts, np.ndarray):
        contexts = torch.from_numpy(contexts.astype(np.int64)).to(device)
    served = torch.from_numpy(np.asarray(lists, dtype=np.int64)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(served), generator=generator, device=device)
        for start in range(0, len(order), cfg.batch_users):
            batch = order[start : start + cfg.batch_users]
            loss = list_losses(model, contexts[batch], served[batch], cfg, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return model
