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


def list_losses(model, contexts: torch.Tensor, lists: torch.Tensor, cfg: ListLossConfig, generator,
                outside: torch.Tensor | None = None) -> torch.Tensor:
    """The ranking and recommended-item parts for a batch; `outside` [b, K, n] are the sampled
    items (uniform outside each list unless given)."""
    if outside is None:
        outside = sample_outside(lists, model.n_items, cfg.negatives, generator)  # [b, K, n]
    # One scoring call for listed and outside items: a sequential model encodes its context once.
    scores = model.score_pairs(contexts, torch.cat([lists, outside.flatten(1)], dim=1))
    listed, outside_scores = scores[:, : lists.shape[1]], scores[:, lists.shape[1] :].view(outside.shape)
    ranking = pairwise_loss(cfg.ranking_loss, listed[:, :-1], listed[:, 1:], cfg.margin)
    items = pairwise_loss(cfg.item_loss, listed.unsqueeze(-1), outside_scores, cfg.margin)
    return ranking + items


@torch.no_grad()
def sample_from_model_top(model, contexts, lists: torch.Tensor, per_item: int, pool: int, generator,
                          seen: torch.Tensor | None = None) -> torch.Tensor:
    """For each row of `lists` [b, K], K * per_item items drawn uniformly from the `pool` items the
    model itself now ranks highest outside that list (and outside `seen` [b, n_items], a boolean
    mask of each context's known items, which no list shows): [b, K, per_item].

    Uniform outside items rarely land on the items a pretrained clone wrongly ranks high when the
    catalogue is large (on Ta-Feng a draw hits one of a clone's top 200 with probability 200/15,483),
    so the recommended-item part stops teaching anything; these are the items that keep listed ones
    out of the clone's top-K."""
    b, k = lists.shape
    items = torch.arange(model.n_items, device=lists.device).expand(b, -1)
    scores = model.score_pairs(contexts, items).clone()
    if seen is not None:
        scores[seen] = float("-inf")
    scores.scatter_(1, lists, float("-inf"))
    pool = min(pool, model.n_items - k)
    top = scores.topk(pool, dim=1).indices
    pick = torch.randint(0, pool, (b, k * per_item), generator=generator, device=lists.device)
    return top.gather(1, pick).view(b, k, per_item)


def finetune_on_lists(model, contexts, lists: np.ndarray, cfg: ListLossConfig, *, seed: int,
                      model_top_pool: int = 0, seen=None):
    """Train `model` on the list losses: context `contexts[i]` was served `lists[i]`, best first.

    `contexts` is an array (user rows [n], or sequences [n, L]) or any object with `len()` and
    indexing by a LongTensor of example ids that yields the batch's contexts (e.g. prefixes built
    on the fly, too many to hold at once). With `model_top_pool` > 0 the outside items come from
    the model's own top that many (`sample_from_model_top`; `seen`: a CSR matrix of each
    context's known items to leave out of that pool); otherwise uniformly outside the list."""
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
            outside = None
            if model_top_pool:
                mask = None if seen is None else _dense_mask(seen, batch, model.n_items, device)
                outside = sample_from_model_top(model, contexts[batch], served[batch], cfg.negatives,
                                                model_top_pool, generator, mask)
            loss = list_losses(model, contexts[batch], served[batch], cfg, generator, outside)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def _dense_mask(seen, rows: torch.Tensor, n_items: int, device) -> torch.Tensor:
    block = seen[rows.cpu().numpy()].tocoo()
    mask = torch.zeros(len(rows), n_items, dtype=torch.bool, device=device)
    mask[torch.from_numpy(block.row).long().to(device), torch.from_numpy(block.col).long().to(device)] = True
    return mask
