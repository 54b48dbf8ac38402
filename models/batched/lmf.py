"""LMF (models.training.train_sampled, objective bce), R copies at a time."""

from __future__ import annotations

import scipy.sparse as sp
import torch

from recsec.models.batched.common import EpochCallbacks, StackedTables, descend_copies, seeded_samplers, stacked_rows
from recsec.models.lmf import LMF
from recsec.models.optim import adam
from recsec.models.training import sampled_loss

TABLES = ("user_factors", "item_factors", "user_bias", "item_bias")


def fit_lmf_copies(models: list[LMF], train: sp.csr_matrix, seeds: list[int],
                   on_epoch: EpochCallbacks) -> list[LMF]:
    cfg = models[0].config
    _, samplers = seeded_samplers(models, train, seeds)
    stack = StackedTables(models, TABLES)

    def losses(epoch):
        for batches in zip(*(sampler.batches(cfg.batch_size) for sampler in samplers)):
            users, pos = torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])
            # each copy's negatives from its own sampler, as its lone batch draws them
            neg = torch.stack([sampler.negatives(u, per_user=cfg.negatives).view(len(u), cfg.negatives)
                               for sampler, u in zip(samplers, users)])
            pos_scores, neg_scores = _scores(stack, users, pos.unsqueeze(-1)), _scores(stack, users, neg)
            # copy by copy: the loss's log-sigmoid rounds a value by where it sits in a tensor
            yield torch.stack([sampled_loss("bce", p, n) for p, n in zip(pos_scores, neg_scores)])

    optimizer = adam(stack.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)  # the lone fit's: elementwise
    return descend_copies(stack, models, optimizer, cfg.epochs, losses, on_epoch)


def _scores(stack: StackedTables, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """users [R, b], items [R, b, m]: copy r's LMF.score_pairs(users[r], items[r]) -> [R, b, m]."""
    dots = (stacked_rows(stack.user_factors, users).unsqueeze(2) * stacked_rows(stack.item_factors, items)).sum(-1)
    return dots + stacked_rows(stack.user_bias, users)[..., None] + stacked_rows(stack.item_bias, items)
