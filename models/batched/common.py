"""What every batched trainer shares: stacked parameters, per-copy gathers and epoch reports."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import scipy.sparse as sp
import torch

from recsec.models.base import EpochCallback, Recommender, gather_rows
from recsec.models.sampling import InteractionSampler, make_generator

# (copy index) -> that copy's epoch callback (e.g. its best-epoch keeper), or None
EpochCallbacks = Callable[[int], EpochCallback | None]


def seeded_samplers(models: Sequence[Recommender], train: sp.csr_matrix,
                    seeds: Sequence[int]) -> tuple[list[torch.Generator], list[InteractionSampler]]:
    """Each copy's set-up, as its lone fit does it: its generator, its initialisation drawn from
    it, and its sampler drawing from it after (copy r's draws come in a lone fit's order)."""
    generators, samplers = [], []
    for model, seed in zip(models, seeds):
        model.check_train_shape(train)
        generator = make_generator(seed, model.device)
        model.reset_parameters(generator)
        generators.append(generator)
        samplers.append(InteractionSampler(train, model.device, generator))
    return generators, samplers


def descend_copies(stack: torch.nn.Module, models: Sequence[Recommender], optimizer: torch.optim.Optimizer,
                   epochs: int, losses: Callable[[int], Iterator[torch.Tensor]],
                   on_epoch: EpochCallbacks) -> list[Recommender]:
    """`models.training.descend` along the copy axis: one step on each batch's per-copy losses
    [R] that `losses(epoch)` yields, each copy's epoch mean to its callback; at the end each
    copy's weights are written back into its lone model (`stack.write_back(models)`)."""
    callbacks = [on_epoch(r) for r in range(len(models))]
    for epoch in range(epochs):
        total, n_batches = torch.zeros(len(models), device=models[0].device), 0
        for per_copy in losses(epoch):
            optimizer.zero_grad(set_to_none=True)
            per_copy.sum().backward()  # copy r's gradient is its own loss's: the copies share nothing
            optimizer.step()
            total += per_copy.detach()
            n_batches += 1
        report_epoch(callbacks, epoch, total, n_batches, lambda: stack.write_back(models))
    stack.write_back(models)
    for model in models:
        model.eval()
    return list(models)


def stacked(tensors: Iterable[torch.Tensor]) -> torch.nn.Parameter:
    """The copies' tensors as one parameter with a leading copy axis."""
    return torch.nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))


def stacked_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Copy r's rows `index[r]` of its table: table [R, n, ...], index [R, ...] -> [R, ..., ...], one
    gather over the flattened copies (its backward adds each row's gradients in a lone fit's order)."""
    copies, rows = table.shape[:2]
    offsets = torch.arange(copies, device=index.device).view(copies, *[1] * (index.dim() - 1)) * rows
    flat = table.reshape(copies * rows, *table.shape[2:])
    return gather_rows(flat, index + offsets)


def report_epoch(callbacks: list[EpochCallback | None], epoch: int, losses: torch.Tensor, n_batches: int,
                 write_back: Callable[[], None]) -> None:
    """Each copy's epoch callback with its mean batch loss, its lone model holding its weights."""
    if not any(callbacks):
        return
    write_back()
    for r, callback in enumerate(callbacks):
        if callback is not None:
            callback(epoch, float(losses[r]) / max(1, n_batches))


class StackedTables(torch.nn.Module):
    """The named parameters of R copies of a model, each stacked on a leading copy axis."""

    def __init__(self, models, names: tuple[str, ...]):
        super().__init__()
        self.names = names
        for name in names:
            setattr(self, name, stacked(getattr(model, name) for model in models))

    @torch.no_grad()
    def write_back(self, models) -> None:
        """Copy each copy's parameters into its lone model (for its callbacks, and at the end)."""
        for r, model in enumerate(models):
            for name in self.names:
                getattr(model, name).copy_(getattr(self, name)[r])
