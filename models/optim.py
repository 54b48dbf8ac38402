"""Optimizers for embedding tables with hand-computed row gradients: `step(rows, row_grads)`.

`DenseAdam` is torch's (fused) Adam: every row's moments decay at every step, as in the stealing
paper. It is memory-bound: each step reads and writes the whole table and both moments.
`LazyAdam` updates only the rows a batch touched (as TensorFlow's LazyAdam and torch's SparseAdam
do). `SGD` is Rendle et al.'s original BPR learning rule: one scatter-add per step, no state,
the fastest on CPUs (what the `implicit` library uses).
"""

from __future__ import annotations

import math

import torch


def adam(params, **kwargs) -> torch.optim.Adam:
    """torch's Adam with its multi-tensor (`foreach`) update, which torch picks by default only
    for GPU parameters. On a CPU it gives the same bits as the per-tensor loop with less Python
    overhead: a small NeuMF's step at batch 256 runs 1.1-1.4x faster (benchmarks/foundation.py)."""
    return torch.optim.Adam(params, foreach=True, **kwargs)


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """torch's AdamW with the multi-tensor update (see `adam`)."""
    return torch.optim.AdamW(params, foreach=True, **kwargs)


class DenseAdam:
    def __init__(self, table: torch.nn.Parameter, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.table = table
        table.grad = torch.zeros_like(table)
        self._adam = torch.optim.Adam([table], lr=lr, betas=betas, eps=eps, fused=True)

    def step(self, rows: torch.Tensor, row_grads: torch.Tensor) -> None:
        self.table.grad.zero_()
        self.table.grad.index_add_(0, rows, row_grads)
        self._adam.step()

    def close(self) -> None:
        self.table.grad = None


class LazyAdam:
    def __init__(self, table: torch.nn.Parameter, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.table = table.data
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.exp_avg = torch.zeros_like(self.table)
        self.exp_avg_sq = torch.zeros_like(self.table)
        self.steps = 0

    def step(self, rows: torch.Tensor, row_grads: torch.Tensor) -> None:
        self.steps += 1
        touched, position = torch.unique(rows, return_inverse=True)
        grad = torch.zeros(len(touched), self.table.shape[1], device=self.table.device)
        grad.index_add_(0, position, row_grads)
        m = self.exp_avg.index_select(0, touched).mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        v = self.exp_avg_sq.index_select(0, touched).mul_(self.beta2)
        v.addcmul_(grad, grad, value=1 - self.beta2)
        bias1 = 1 - self.beta1**self.steps
        bias2 = 1 - self.beta2**self.steps
        denom = v.sqrt().div_(math.sqrt(bias2)).add_(self.eps)
        params = self.table.index_select(0, touched).addcdiv_(m, denom, value=-self.lr / bias1)
        self.exp_avg.index_copy_(0, touched, m)
        self.exp_avg_sq.index_copy_(0, touched, v)
        self.table.index_copy_(0, touched, params)

    def close(self) -> None:
        pass


class SGD:
    def __init__(self, table: torch.nn.Parameter, lr: float):
        self.table = table.data
        self.lr = lr

    def step(self, rows: torch.Tensor, row_grads: torch.Tensor) -> None:
        # Scale in place first: index_add_ with alpha != 1 is several times slower on CPU.
        self.table.index_add_(0, rows, row_grads.mul_(-self.lr))

    def close(self) -> None:
        pass


OPTIMIZERS = {"adam": DenseAdam, "lazy_adam": LazyAdam, "sgd": SGD}
