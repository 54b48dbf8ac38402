"""What every batched trainer shares: stacked parameters, per-copy gathers and epoch reports."""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from recsec.models.base import EpochCallback, gather_rows

# (copy index) -> that copy's epoch callback (e.g. its best-epoch keeper), or None
EpochCallbacks = Callable[[int], EpochCallback | None]


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
