"""The shared autograd training loop for models trained on (user, positive, sampled negatives).

BPR-MF has its own faster loop (models/bpr.py); every other pairwise or pointwise model trains
here, so sampling, seeding, devices and progress are written once.
"""

from __future__ import annotations

from typing import Callable, Iterator

import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recsec.models.base import EpochCallback, Recommender
from recsec.models.losses import bpr_loss
from recsec.models.optim import adam
from recsec.models.sampling import InteractionSampler, make_generator

OBJECTIVES = ("bpr", "bce")


def sampled_loss(objective: str, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """pos [b, 1], neg [b, n]: BPR over each (pos, neg) pair, or binary cross-entropy with
    positives labelled 1 and sampled negatives 0 (NCF's and LMF's log-likelihood)."""
    if objective == "bpr":
        return bpr_loss(pos, neg)
    if objective == "bce":
        return -(F.logsigmoid(pos).mean() + F.logsigmoid(-neg).mean() * neg.shape[1]) / (1 + neg.shape[1])
    raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")


def train_sampled(
    model: Recommender,
    train: sp.csr_matrix,
    *,
    objective: str,
    epochs: int,
    batch_size: int,
    lr: float,
    negatives: int = 1,
    weight_decay: float = 0.0,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    reset: bool = True,
) -> Recommender:
    """Adam on `objective` over every interaction per epoch, each with `negatives` sampled items.

    `reset=False` keeps the model's current weights as the starting point (e.g. item tables an
    attack initialized from an auxiliary model)."""
    optimizer = adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    def batch_loss(epoch, sampler, users, pos, _):
        neg = sampler.negatives(users, per_user=negatives).view(len(users), negatives)
        return sampled_loss(objective, model.score_pairs(users, pos.unsqueeze(1)), model.score_pairs(users, neg))

    return train_pairs(model, train, optimizer, batch_loss, epochs=epochs, batch_size=batch_size, seed=seed,
                       on_epoch=on_epoch, reset=reset)


def train_pairs(
    model: Recommender,
    train: sp.csr_matrix,
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[int, InteractionSampler, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    reset: bool = True,
) -> Recommender:
    """The epoch loop: every interaction once per epoch as (users, positives, one sampled negative)
    batches; `batch_loss(epoch, sampler, users, pos, neg)` gives the loss to step on (the sampler
    draws more negatives if the loss wants them)."""
    model.check_train_shape(train)
    generator = make_generator(seed, model.device)
    if reset:
        model.reset_parameters(generator)  # in place: the optimizer's parameters stay the same
    sampler = InteractionSampler(train, model.device, generator)
    return descend(model, optimizer, epochs, lambda epoch: (batch_loss(epoch, sampler, users, pos, neg)
                                                            for users, pos, neg in sampler.batches(batch_size)),
                   on_epoch)


def descend(model: Recommender, optimizer: torch.optim.Optimizer, epochs: int,
            losses: Callable[[int], Iterator[torch.Tensor]], on_epoch: EpochCallback | None = None) -> Recommender:
    """The epoch loop: one optimizer step on each batch loss `losses(epoch)` yields; the epoch's
    mean loss to `on_epoch`."""
    model.train()
    for epoch in range(epochs):
        total, n_batches = torch.zeros((), device=model.device), 0
        for loss in losses(epoch):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            n_batches += 1
        if on_epoch is not None:
            on_epoch(epoch, float(total) / max(1, n_batches))
    model.eval()
    return model


def train_fixed_negatives(
    model: Recommender,
    train: sp.csr_matrix,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    negatives: int,
    weight_decay: float = 0.0,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    reset: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
) -> Recommender:
    """Binary cross-entropy over instances built once, as NCF's code (and DL-Attack's) builds them:
    every positive labelled 1 and `negatives` items per positive labelled 0, drawn once, uniform
    over the items outside the user's row; each epoch visits all instances in a fresh order.
    `reset=False` continues from the model's weights; `optimizer` continues its state."""
    model.check_train_shape(train)
    generator = make_generator(seed, model.device)
    if reset:
        model.reset_parameters(generator)
    sampler = InteractionSampler(train, model.device, generator)
    negative_users = sampler.users.repeat_interleave(negatives)
    users = torch.cat([sampler.users, negative_users])
    items = torch.cat([sampler.items, sampler.negatives(negative_users)])
    labels = torch.cat([torch.ones(len(sampler.users), device=model.device),
                        torch.zeros(len(negative_users), device=model.device)])
    if optimizer is None:
        optimizer = adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    def losses(epoch: int) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(users), generator=generator, device=model.device)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            logits = model.score_pairs(users[batch], items[batch].unsqueeze(1)).squeeze(1)
            yield F.binary_cross_entropy_with_logits(logits, labels[batch])

    return descend(model, optimizer, epochs, losses, on_epoch)
