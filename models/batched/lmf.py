"""LMF (models.training.train_sampled, objective bce), R copies at a time."""

from __future__ import annotations

import scipy.sparse as sp
import torch

from recsec.models.batched.common import EpochCallbacks, StackedTables, report_epoch, stacked_rows
from recsec.models.lmf import LMF
from recsec.models.optim import adam
from recsec.models.sampling import InteractionSampler, make_generator
from recsec.models.training import sampled_loss

TABLES = ("user_factors", "item_factors", "user_bias", "item_bias")


def fit_lmf_copies(models: list[LMF], train: sp.csr_matrix, seeds: list[int],
                   on_epoch: EpochCallbacks) -> list[LMF]:
    cfg, device = models[0].config, models[0].device
    callbacks = [on_epoch(r) for r in range(len(models))]
    samplers = []
    for model, seed in zip(models, seeds):
        model.check_train_shape(train)
        generator = make_generator(seed, device)
        model.reset_parameters(generator)
        samplers.append(InteractionSampler(train, device, generator))
    stack = StackedTables(models, TABLES)
    optimizer = adam(stack.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)  # the lone fit's: elementwise
    for epoch in range(cfg.epochs):
        total, n_batches = torch.zeros(len(models), device=device), 0
        for batches in zip(*(sampler.batches(cfg.batch_size) for sampler in samplers)):
            users, pos = torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])
            # each copy's negatives from its own sampler, as its lone batch draws them
            neg = torch.stack([sampler.negatives(u, per_user=cfg.negatives).view(len(u), cfg.negatives)
                               for sampler, u in zip(samplers, users)])
            pos_scores, neg_scores = _scores(stack, users, pos.unsqueeze(-1)), _scores(stack, users, neg)
            # copy by copy: the loss's log-sigmoid rounds a value by where it sits in a tensor
            per_copy = torch.stack([sampled_loss("bce", p, n) for p, n in zip(pos_scores, neg_scores)])
            optimizer.zero_grad(set_to_none=True)
            per_copy.sum().backward()
            optimizer.step()
            total += per_copy.detach()
            n_batches += 1
        report_epoch(callbacks, epoch, total, n_batches, lambda: stack.write_back(models))
    stack.write_back(models)
    for model in models:
        model.eval()
    return models


def _scores(stack: StackedTables, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """users [R, b], items [R, b, m]: copy r's LMF.score_pairs(users[r], items[r]) -> [R, b, m]."""
    dots = (stacked_rows(stack.user_factors, users).unsqueeze(2) * stacked_rows(stack.item_factors, items)).sum(-1)
    return dots + stacked_rows(stack.user_bias, users)[..., None] + stacked_rows(stack.item_bias, items)
