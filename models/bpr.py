"""BPR-MF (Rendle et al., 2009): matrix factorization trained with the BPR pairwise loss.

Training uses a hand-derived gradient and fused Adam instead of autograd: on 2 CPU cores this
is several times faster per epoch (autograd's per-batch overhead dominates at batch 2048), and
`tests/models/test_models.py` checks the gradient against autograd. Clones that need other losses train
the same module through autograd via `score_pairs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recsec.models.base import EpochCallback, Recommender, gather_rows, normal_init_
from recsec.models.config import check_fields
from recsec.models.optim import OPTIMIZERS
from recsec.models.registry import register_model
from recsec.models.sampling import InteractionSampler, make_generator


# (epoch, users, positives, negatives) -> (rows touched, their gradients, the batch loss)
RowGradient = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


LEARN_BPR = "learnbpr"  # the per-example optimizer: not a row optimizer (models/bpr_kernel.py)


@dataclass(frozen=True)
class BPRConfig:
    dim: int = 64
    epochs: int = 30
    batch_size: int = 2048
    lr: float = 1e-3
    reg: float = 0.0  # L2 on the embeddings of each sampled (u, i, j), per example
    init_std: float = 0.1
    # "adam" (dense, as published), "lazy_adam" or "sgd" (see models/optim.py). With sgd, lr is the
    # per-example rate of Rendle et al. and `implicit` (applied to the batch's summed gradient).
    # "learnbpr": per-example SGD, one example after another (models/bpr_kernel.py; lr per
    # example, batch_size unused; CPU only).
    optimizer: str = "adam"

    def __post_init__(self):
        check_fields("bpr", self, at_least_one=("dim", "epochs", "batch_size"), positive=("lr", "init_std"),
                     non_negative=("reg",))
        if self.optimizer not in (*OPTIMIZERS, LEARN_BPR):
            raise ValueError(f"bpr: optimizer must be one of {sorted((*OPTIMIZERS, LEARN_BPR))}, "
                             f"got {self.optimizer!r}")


def each_copy(function, values: torch.Tensor) -> torch.Tensor:
    """`function(values)`, applied copy by copy to values [R, b] (or at once to [b]): torch's
    transcendental kernels (exp, sigmoid) round their vectorised body and their scalar tail
    differently, so a copy's batch must sit where a lone batch does, not at an offset in a stack."""
    return function(values) if values.dim() == 1 else torch.stack([function(row) for row in values])


def bpr_batch_gradient(table, n_users, users, pos, neg, reg, offsets=0):
    """Rows touched by a BPR batch, their gradients and the batch loss (mean over the batch).

    `table` stacks user rows [0, n_users) and item rows [n_users, n_users + n_items). With
    `users`, `pos`, `neg` of shape [R, b], the batches of R copies whose tables are stacked in
    `table` (copy r's from row `offsets[r]`): the rows of all, and each copy's loss [R]. Every
    operation is elementwise or along one copy's own batch, so each copy's rows, gradients and
    loss are the bits its lone batch gives (models/batched/).
    """
    b, dim = users.shape[-1], table.shape[1]
    rows = torch.cat([users, pos + n_users, neg + n_users], dim=-1) + offsets
    emb = table.index_select(0, rows.reshape(-1)).view(*rows.shape, dim)
    p_u, q_i, q_j = emb[..., :b, :], emb[..., b : 2 * b, :], emb[..., 2 * b :, :]
    diff = q_i - q_j
    x = (p_u * diff).sum(-1)
    # d/dx of -ln sigmoid(x) is sigmoid(x) - 1; divided by b because the loss is a batch mean.
    coef = ((each_copy(torch.sigmoid, x) - 1) / b).unsqueeze(-1)
    pu_coef = p_u * coef
    grads = torch.cat([diff * coef, pu_coef, -pu_coef], dim=-2)
    loss = -each_copy(F.logsigmoid, x).mean(-1)
    if reg:
        grads += (reg / b) * emb
        loss = loss + reg / (2 * b) * emb.square().sum((-2, -1))
    return rows.reshape(-1), grads.reshape(-1, dim), loss


@register_model("bpr")
class BPRMF(Recommender):
    Config = BPRConfig
    objective = "bpr"  # what fit() optimizes
    fold_in = "factors"

    def __init__(self, n_users: int, n_items: int, config: BPRConfig = BPRConfig()):
        super().__init__(n_users, n_items, config)
        # One table for users then items, so a batch is one gather, one scatter, one Adam call.
        self.embedding = nn.Parameter(torch.empty(n_users + n_items, config.dim))
        self.reset_parameters(make_generator(0, torch.device("cpu")))

    def reset_parameters(self, generator: torch.Generator) -> None:
        normal_init_((self.embedding,), generator, self.config.init_std)

    @property
    def user_factors(self) -> torch.Tensor:
        return self.embedding[: self.n_users]

    @property
    def item_factors(self) -> torch.Tensor:
        return self.embedding[self.n_users :]

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_factors[users] @ self.item_factors.T

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (gather_rows(self.user_factors, users).unsqueeze(1) * gather_rows(self.item_factors, items)).sum(-1)

    def item_tables(self) -> dict[str, torch.Tensor]:
        return {"item": self.item_factors}

    def user_vectors(self, users: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"item": gather_rows(self.user_factors, users)}

    def score_with_item_vectors(self, users, items, vectors):
        return (gather_rows(self.user_factors, users).unsqueeze(1) * vectors["item"]).sum(-1)

    def fit(self, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        return self.train_rows(train, None, seed=seed, epochs=self.config.epochs, on_epoch=on_epoch)

    can_warm_start = True

    def warm_fit(self, train: sp.csr_matrix, start: "BPRMF", *, epochs: int, seed: int = 0,
                 on_epoch: EpochCallback | None = None):
        """Continue from `start`, a model of the first `start.n_users` users of `train` and its
        items: their rows copied, every other user's drawn afresh, then `epochs` epochs on
        `train` with a fresh optimizer (a poisoned retraining from the clean target)."""
        if start.n_items != self.n_items or start.n_users > self.n_users or start.config.dim != self.config.dim:
            raise ValueError(f"bpr: cannot warm-start {self.n_users} x {self.n_items} (dim {self.config.dim}) from "
                             f"{start.n_users} x {start.n_items} (dim {start.config.dim})")
        self.reset_parameters(make_generator(seed, self.device))
        with torch.no_grad():
            self.user_factors[: start.n_users].copy_(start.user_factors.to(self.device))
            self.item_factors.copy_(start.item_factors.to(self.device))
        return self.train_rows(train, None, seed=seed, epochs=epochs, on_epoch=on_epoch, reset=False)

    def bpr_gradient(self) -> RowGradient:
        """The plain BPR batch gradient on this model's table (with its per-example L2)."""
        table, reg = self.embedding.detach(), self.config.reg
        return lambda epoch, users, pos, neg: bpr_batch_gradient(table, self.n_users, users, pos, neg, reg)

    def train_rows(self, train: sp.csr_matrix, batch_gradient: RowGradient | None, *, seed: int, epochs: int,
                   on_epoch: EpochCallback | None = None, reset: bool = True, first_epoch: int = 0):
        """The epoch loop on the embedding table: `batch_gradient(epoch, users, pos, neg)` gives
        the rows a batch touches, their gradients and its loss (None: the plain BPR gradient);
        the config's optimizer steps them. Adversarial trainings (defenses/poisoning) reuse it
        with their own batch gradient."""
        self.check_train_shape(train)
        cfg = self.config
        generator = make_generator(seed, self.device)
        if reset:
            self.reset_parameters(generator)
        sampler = InteractionSampler(train, self.device, generator)
        if cfg.optimizer == LEARN_BPR:
            if batch_gradient is not None:
                raise ValueError("bpr: optimizer learnbpr steps on the plain BPR loss one example at a time; "
                                 "a training with its own batch gradient (apr, vat) needs adam, lazy_adam or sgd")
            return self._learn_bpr(sampler, epochs, on_epoch, first_epoch)
        batch_gradient = batch_gradient or self.bpr_gradient()
        lr = cfg.lr * cfg.batch_size if cfg.optimizer == "sgd" else cfg.lr
        optimizer = OPTIMIZERS[cfg.optimizer](self.embedding, lr)
        for epoch in range(epochs):
            total = torch.zeros((), device=self.device)
            n_batches = 0
            for users, pos, neg in sampler.batches(cfg.batch_size):
                rows, grads, loss = batch_gradient(epoch, users, pos, neg)
                optimizer.step(rows, grads)
                total += loss.detach()
                n_batches += 1
            if on_epoch is not None:
                on_epoch(first_epoch + epoch, float(total) / max(1, n_batches))
        optimizer.close()
        return self

    def _learn_bpr(self, sampler: InteractionSampler, epochs: int, on_epoch: EpochCallback | None,
                   first_epoch: int):
        """LearnBPR's per-example SGD on the table, in place (models/bpr_kernel.py); each next
        epoch's examples are drawn in a second thread while this one's step (the kernel holds no
        GIL; the draws come in the same order, from the one generator)."""
        from concurrent.futures import ThreadPoolExecutor

        from recsec.models.bpr_kernel import learn_bpr_epoch

        if self.device.type != "cpu":
            raise ValueError(f"bpr: optimizer learnbpr runs on the CPU, not {self.device}")
        table = self.embedding.detach().numpy()  # the parameter's own memory

        def draw():  # the whole epoch's examples at once
            return [tuple(part.numpy() for part in batch) for batch in sampler.batches(max(1, sampler.n_interactions))]

        with ThreadPoolExecutor(max_workers=1) as drawer:
            examples = drawer.submit(draw)
            for epoch in range(epochs):
                batches = examples.result()
                if epoch + 1 < epochs:
                    examples = drawer.submit(draw)
                loss = 0.0
                for users, pos, neg in batches:
                    loss = learn_bpr_epoch(table, users, pos, neg, self.n_users, self.config.lr, self.config.reg)
                if on_epoch is not None:
                    on_epoch(first_epoch + epoch, loss)
        return self
