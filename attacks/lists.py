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

from recsec.models.losses import PAIRWISE_LOSSES, pairwise_loss
from recsec.models.optim import adam
from recsec.models.ranking import mask_rows_
from recsec.models.sampling import make_generator, sample_outside, seeded_global_rng


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
def model_top_pools(model, contexts, lists: torch.Tensor, pool: int, seen=None, batch: int = 256) -> torch.Tensor:
    """For each context i, the `pool` items the model now ranks highest outside `lists[i]` and
    outside row i of `seen` (a CSR matrix of known items, which no list shows): [n, pool].

    Uniform outside items rarely land on the items a pretrained clone wrongly ranks high when the
    catalogue is large (on Ta-Feng a draw hits one of a clone's top 200 with probability 200/15,483),
    so the recommended-item part stops teaching anything; these are the items that keep listed ones
    out of the clone's top-K."""
    n, k = lists.shape
    pool = min(pool, model.n_items - k)
    training = model.training
    model.eval()
    pools = []
    for start in range(0, n, batch):
        rows = torch.arange(start, min(start + batch, n), device=lists.device)
        scores = model.score(contexts[rows])
        if seen is not None:
            mask_rows_(scores, seen[start : start + len(rows)])
        scores.scatter_(1, lists[rows], float("-inf"))
        pools.append(scores.topk(pool, dim=1).indices)
    model.train(training)
    return torch.cat(pools)


def draw_from_pools(pools: torch.Tensor, k: int, per_item: int, generator) -> torch.Tensor:
    """k * per_item items drawn uniformly from each row of `pools` [b, P]: [b, k, per_item]."""
    pick = torch.randint(0, pools.shape[1], (pools.shape[0], k * per_item), generator=generator, device=pools.device)
    return pools.gather(1, pick).view(pools.shape[0], k, per_item)


def finetune_on_lists(model, contexts, lists: np.ndarray, cfg: ListLossConfig, *, seed: int, dropout_seed: int,
                      model_top_pool: int = 0, pool_refresh: int = 50, seen=None):
    """Train `model` on the list losses: context `contexts[i]` was served `lists[i]`, best first.

    `contexts` is an array (user rows [n], or sequences [n, L]) or any object with `len()` and
    indexing by a LongTensor of example ids that yields the batch's contexts (e.g. prefixes built
    on the fly, too many to hold at once). With `model_top_pool` > 0 the outside items come from
    the model's own top that many (`model_top_pools`, recomputed every `pool_refresh` steps:
    scoring every item is the costly part; `seen`: a CSR matrix of each context's known items to
    leave out of the pool); otherwise uniformly outside the list. `dropout_seed` seeds torch's global
    generator while it trains (dropout draws from it; a stream apart from `seed`'s)."""
    if len(contexts) == 0 or cfg.epochs == 0:
        return model
    device = model.device
    generator = make_generator(seed, device)
    if isinstance(contexts, np.ndarray):
        contexts = torch.from_numpy(contexts.astype(np.int64)).to(device)
    served = torch.from_numpy(np.asarray(lists, dtype=np.int64)).to(device)
    with seeded_global_rng(dropout_seed, device):  # dropout takes no generator: torch's global one, seeded
        optimizer = adam(model.parameters(), lr=cfg.lr)
        model.train()
        step, pools = 0, None
        for _ in range(cfg.epochs):
            order = torch.randperm(len(served), generator=generator, device=device)
            for start in range(0, len(order), cfg.batch_users):
                batch = order[start : start + cfg.batch_users]
                outside = None
                if model_top_pool:
                    if step % pool_refresh == 0:
                        pools = model_top_pools(model, contexts, served, model_top_pool, seen)
                    outside = draw_from_pools(pools[batch], served.shape[1], cfg.negatives, generator)
                step += 1
                loss = list_losses(model, contexts[batch], served[batch], cfg, generator, outside)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        model.eval()
        return model

