"""LightGCN (LightGCN.fit), R copies at a time: their tables interleaved as [nodes, R, dim], so
that each layer's propagation is one sparse product with an R-times wider dense matrix (each of
its columns is summed as a lone copy's is)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recsec.models.base import gather_rows
from recsec.models.batched.common import EpochCallbacks, descend_copies, seeded_samplers
from recsec.models.lightgcn import LightGCN, SymmetricProduct, normalized_adjacency
from recsec.models.optim import adam


def fit_lightgcn_copies(models: list[LightGCN], train: sp.csr_matrix, seeds: list[int],
                        on_epoch: EpochCallbacks) -> list[LightGCN]:
    cfg, device = models[0].config, models[0].device
    train = sp.csr_matrix(train)
    train.sort_indices()
    if cfg.sampling == "user_uniform" and (np.diff(train.indptr) == 0).any():
        # The sampler drops the users without interactions it drew: the copies' epochs would
        # differ in length, so they are fit one by one.
        return [model.fit(train, seed=seed, on_epoch=on_epoch(r)) for r, (model, seed) in enumerate(zip(models, seeds))]
    _, samplers = seeded_samplers(models, train, seeds)
    stack = _StackedLightGCN(models, normalized_adjacency(train, device))

    def losses(epoch):
        epochs = [s.user_uniform_batches(cfg.batch_size) if cfg.sampling == "user_uniform" else s.batches(cfg.batch_size)
                  for s in samplers]
        for batches in zip(*epochs):
            users, pos, neg = (torch.stack(part) for part in zip(*batches))
            yield stack.batch_losses(users, pos, neg)

    optimizer = adam([stack.embedding], lr=cfg.lr)  # the lone fit's: elementwise
    return descend_copies(stack, models, optimizer, cfg.epochs, losses, on_epoch)


class _StackedLightGCN(torch.nn.Module):
    def __init__(self, models: list[LightGCN], graph: torch.Tensor):
        super().__init__()
        self.embedding = torch.nn.Parameter(torch.stack([m.embedding.detach().clone() for m in models], dim=1))
        self.graph, self.n_users, self.config = graph, models[0].n_users, models[0].config

    def propagate(self, flat: torch.Tensor | None = None) -> torch.Tensor:
        """LightGCN.propagate of every copy: [nodes, R, dim] (from `flat`, the table as [nodes, R * dim])."""
        nodes, copies, dim = self.embedding.shape
        layer = total = self.embedding.view(nodes, copies * dim) if flat is None else flat
        for _ in range(self.config.layers):
            layer = SymmetricProduct.apply(self.graph, layer)
            total = total + layer
        return (total / (self.config.layers + 1)).view(nodes, copies, dim)

    def _rows(self, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Copy r's rows `rows[r]` of table [nodes, R, dim]: [R, n, dim]."""
        nodes, copies, dim = table.shape
        copy = torch.arange(copies, device=rows.device).unsqueeze(1)
        return gather_rows(table.reshape(nodes * copies, dim), rows * copies + copy)

    def batch_losses(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Each copy's LightGCN.batch_loss on its batch (users, pos, neg [R, b]): [R]."""
        b = users.shape[1]
        # One view of the table feeds both the propagation and the L2 term, so that its gradients
        # meet in the order a lone fit's do: float addition of three terms depends on it.
        flat = self.embedding.view(self.embedding.shape[0], -1)
        rows = torch.cat([users, self.n_users + pos, self.n_users + neg], dim=1)
        u, i, j = self._rows(self.propagate(flat), rows).split(b, dim=1)
        margins = (u * j).sum(-1) - (u * i).sum(-1)
        # copy by copy: softplus rounds a value by where it sits in a tensor
        losses = [F.softplus(margin).mean() for margin in margins]
        if self.config.decay:
            ego = self._rows(flat.view(self.embedding.shape), rows)
            losses = [loss + self.config.decay * 0.5 * rows_r.square().sum() / b for loss, rows_r in zip(losses, ego)]
        return torch.stack(losses)

    @torch.no_grad()
    def write_back(self, models: list[LightGCN]) -> None:
        """Each copy's table and propagated table into its lone model (as its fit keeps them)."""
        propagated = self.propagate()
        for r, model in enumerate(models):
            model.embedding.copy_(self.embedding[:, r])
            model.propagated.copy_(propagated[:, r])
