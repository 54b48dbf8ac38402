"""LightGCN (He et al., SIGIR 2020): embeddings smoothed over the normalized user-item graph.

E^(0) stacks user and item embeddings; E^(l+1) = D^-1/2 A D^-1/2 E^(l) with A = [[0, R], [R^T, 0]];
a user's or item's vector is the mean of its layers 0..L; score = user . item. Trained as the
official code (`gusye1234/LightGCN-PyTorch`) trains it:
- per epoch, as many (user, positive, negative) samples as interactions, the user uniform over
  users (`sampling: user_uniform`, the code's `UniformSample_original`), the positive uniform in
  the user's row, the negative uniform outside it; `sampling: interaction` draws every
  interaction once instead, as our other models do;
- loss mean softplus(neg - pos) + decay * 0.5 * (|e_u|^2 + |e_i|^2 + |e_j|^2) / batch, the L2 on
  the layer-0 embeddings only; Adam, lr 1e-3, batch 2048, dim 64, 3 layers, N(0, 0.1^2) init.
The code trains 1000 epochs and reports the test metric every 10; a harness default must be
affordable on a CPU, so `epochs` defaults to 200 (grids that reproduce a paper set their own).

After `fit`, the propagated embeddings are kept as buffers: ranking and a saved model need no
graph. `score_pairs` propagates through the training graph while one is set (during `fit`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recsec.models.base import EpochCallback, Recommender, gather_rows, normal_init_
from recsec.models.config import check_fields
from recsec.models.optim import adam
from recsec.models.registry import register_model
from recsec.models.sampling import InteractionSampler, make_generator
from recsec.models.training import descend

SAMPLING = ("user_uniform", "interaction")


@dataclass(frozen=True)
class LightGCNConfig:
    dim: int = 64
    layers: int = 3
    epochs: int = 200
    batch_size: int = 2048
    lr: float = 1e-3
    decay: float = 1e-4  # weight of the layer-0 L2 term (the code's --decay)
    init_std: float = 0.1
    sampling: str = "user_uniform"

    def __post_init__(self):
        check_fields("lightgcn", self, at_least_one=("dim", "epochs", "batch_size"),
                     positive=("lr", "init_std"), non_negative=("decay", "layers"))
        if self.sampling not in SAMPLING:
            raise ValueError(f"lightgcn: sampling must be one of {list(SAMPLING)}, got {self.sampling!r}")


def normalized_adjacency(train: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """D^-1/2 [[0, R], [R^T, 0]] D^-1/2 as a sparse CSR tensor; isolated nodes get zero rows.

    CSR, not COO: torch's CPU product of a COO matrix is about five times slower (ML-100k)."""
    r = sp.csr_matrix(train, dtype=np.float32)
    r.data[:] = 1.0
    adjacency = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    adjacency.sort_indices()
    degree = np.asarray(adjacency.sum(1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    rows = np.repeat(np.arange(adjacency.shape[0]), np.diff(adjacency.indptr))
    values = inv_sqrt[rows] * adjacency.data * inv_sqrt[adjacency.indices]
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product we use is not
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(adjacency.indptr.astype(np.int64)),
                                       torch.from_numpy(adjacency.indices.astype(np.int64)),
                                       torch.from_numpy(values), adjacency.shape, device=device)


class SymmetricProduct(torch.autograd.Function):
    """graph @ dense for a symmetric graph. Its backward is graph @ grad: torch's own backward
    would transpose the CSR matrix on every call, which costs more than the product itself."""

    @staticmethod
    def forward(ctx, graph: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.graph = graph
        return graph @ dense

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.graph @ grad


@register_model("lightgcn")
class LightGCN(Recommender):
    Config = LightGCNConfig
    objective = "bpr"

    def __init__(self, n_users: int, n_items: int, config: LightGCNConfig = LightGCNConfig()):
        super().__init__(n_users, n_items, config)
        self.embedding = nn.Parameter(torch.empty(n_users + n_items, config.dim))
        # The propagated embeddings of the last fit (what ranking reads): saved with the model.
        self.register_buffer("propagated", torch.zeros(n_users + n_items, config.dim))
        self._graph: torch.Tensor | None = None
        self.reset_parameters(make_generator(0, torch.device("cpu")))

    def reset_parameters(self, generator: torch.Generator) -> None:
        normal_init_((self.embedding,), generator, self.config.init_std)

    def propagate(self) -> torch.Tensor:
        """Mean of layers 0..L over the training graph (or the kept result once fit is done)."""
        if self._graph is None:
            return self.propagated
        layer, total = self.embedding, self.embedding
        for _ in range(self.config.layers):
            layer = SymmetricProduct.apply(self._graph, layer)
            total = total + layer
        return total / (self.config.layers + 1)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        table = self.propagate()
        return table[users] @ table[self.n_users:].T

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        table = self.propagate()
        return (gather_rows(table, users).unsqueeze(1) * gather_rows(table, self.n_users + items)).sum(-1)

    def fit(self, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        self.check_train_shape(train)
        cfg = self.config
        train = sp.csr_matrix(train)
        train.sort_indices()
        generator = make_generator(seed, self.device)
        self.reset_parameters(generator)
        sampler = InteractionSampler(train, self.device, generator)
        optimizer = adam([self.embedding], lr=cfg.lr)
        self._graph = normalized_adjacency(train, self.device)

        def losses(epoch: int):
            if cfg.sampling == "user_uniform":
                batches = sampler.user_uniform_batches(cfg.batch_size)
            else:
                batches = sampler.batches(cfg.batch_size)
            for users, pos, neg in batches:
                yield self.batch_loss(users, pos, neg)

        def after_epoch(epoch: int, loss: float) -> None:
            # Kept current every epoch: a caller that snapshots the best epoch's state gets its vectors.
            with torch.no_grad():
                self.propagated.copy_(self.propagate())
            if on_epoch is not None:
                on_epoch(epoch, loss)

        try:
            descend(self, optimizer, cfg.epochs, losses, after_epoch)
        finally:
            self._graph = None
        return self

    def batch_loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        table = self.propagate()
        rows = torch.cat([users, self.n_users + pos, self.n_users + neg])
        u, i, j = gather_rows(table, rows).split(len(users))
        loss = F.softplus((u * j).sum(1) - (u * i).sum(1)).mean()
        if self.config.decay:
            ego = gather_rows(self.embedding, rows)
            loss = loss + self.config.decay * 0.5 * ego.square().sum() / len(users)
        return loss
