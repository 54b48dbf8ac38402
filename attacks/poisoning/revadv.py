"""RevAdv (Tang, Wen & Wang, RecSys 2020), as its code (graytowne/revisit_adv_rec) runs its
default configuration, WRMF-SGD:

- The fake users' data is a dense fake-users x items tensor, first copies of the first
  `fake_users` known users with at most `init_max_clicks` items (the code shuffles an index it
  then never uses, so it takes the first ones).
- Each of `adv_epochs` outer steps trains a weighted-MF surrogate from the same seeded
  initialization on [known real users; fake users]: P Q^T, dim 128, N(0, 0.1^2), loss
  sum w (x - p.q)^2 over every cell (w = 20 where x > 0, else 1), Adam lr 1e-2 with L2 1e-5,
  50 epochs of 2048-user batches. The last `unroll_epochs` (10) run with a differentiable Adam,
  so the adversarial loss
      sum over real users of mean over targets of -log softmax(P_u Q^T)[t]
  is differentiated through them with respect to the fake rows (the code's `higher` unroll).
- The gradient is normalized per fake user (L2), SGD with momentum 0.95 and lr 1.0 steps the
  fake tensor, and the result is projected to {0, 1} by the threshold 0.05; targets are not
  forced in (`click_targets: false`, the default configuration's).
- Each outer step first grades the data it trained on by the surrogate's target HR@50 over
  the known users (their training items excluded), and the best data is injected.

Deviations, all options: `projection: budget` (our default) keeps, among the cells above the
threshold, at most the budget's `filler_items` non-target items per fake user, the largest first
(and draws the initial copies down to the budget at random); `projection: threshold` is the
code's unbounded projection, for grids whose filler budget admits it. The code's selection counts
HR over real users with a test item; the attacker here holds no test items, so it counts every
known user. A fake user whose gradient is all zero keeps its data (the code divides by zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recsec.attacks.poisoning.base import Injection, PoisonAttack, PoisonView, profiles_matrix
from recsec.attacks.registry import register_attack
from recsec.models.ranking import mask_rows_
from recsec.models.sampling import make_generator
from recsec.harness import streams

REVADV = streams.purpose("revadv: initial fake profiles", 0x4E7)

PROJECTIONS = ("budget", "threshold")


@dataclass(frozen=True)
class RevAdvConfig:
    adv_epochs: int = 30
    adv_lr: float = 1.0
    adv_momentum: float = 0.95
    threshold: float = 0.05
    click_targets: bool = False
    init_max_clicks: int = 100
    projection: str = "budget"
    selection_k: int = 50  # the code's TargetHR@50
    # the weighted-MF surrogate
    dim: int = 128
    epochs: int = 50
    unroll_epochs: int = 10
    batch_size: int = 2048  # users per batch
    lr: float = 1e-2
    l2: float = 1e-5
    weight: float = 20.0  # the loss weight of observed cells
    init_std: float = 0.1

    def __post_init__(self):
        if self.projection not in PROJECTIONS:
            raise ValueError(f"revadv: projection must be one of {list(PROJECTIONS)}, got {self.projection!r}")
        if not 0 <= self.unroll_epochs <= self.epochs or self.epochs < 1:
            raise ValueError(f"revadv: need 1 <= epochs and 0 <= unroll_epochs <= epochs, got "
                             f"{self.epochs}, {self.unroll_epochs}")
        if self.adv_epochs < 1 or self.dim < 1 or self.batch_size < 1:
            raise ValueError("revadv: adv_epochs, dim and batch_size must be >= 1")


class DifferentiableAdam:
    """torch.optim.Adam's update (L2 added to the gradient) written on tensors, so that steps
    taken with `create_graph=True` stay in the autograd graph: what `higher` does for the code."""

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float,
                 betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.weight_decay, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]
        self.steps = 0

    def step(self, loss: torch.Tensor, differentiable: bool) -> None:
        grads = torch.autograd.grad(loss, self.params, create_graph=differentiable)
        self.steps += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
        updated = []
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if not differentiable:
                p, g = p.detach(), g.detach()
            g = g + self.weight_decay * p
            self.first[i] = beta1 * self.first[i] + (1 - beta1) * g
            self.second[i] = beta2 * self.second[i] + (1 - beta2) * g * g
            # clamp: sqrt's derivative at an exactly-zero second moment would be infinite
            denom = self.second[i].clamp_min(1e-30).sqrt() / correction2 ** 0.5 + self.eps
            p = p - self.lr / correction1 * self.first[i] / denom
            updated.append(p if differentiable else p.detach().requires_grad_())
        self.params = updated


@register_attack("revadv")
class RevAdv(PoisonAttack):
    Config = RevAdvConfig

    def run(self, view: PoisonView, oracle, *, seed: int, device: str = "cpu") -> Injection:
        cfg = self.config
        n_fakes = view.budget.fake_users
        if n_fakes == 0:
            return Injection(profiles_matrix([], view.n_items))
        dev = torch.device(device)
        rng = REVADV.rng(seed)
        targets = torch.as_tensor(np.asarray(view.target_items, dtype=np.int64), device=dev)
        real = torch.from_numpy(view.known_train.toarray().astype(np.float32)).to(dev)
        fake = self._project(self._initial_copies(view, n_fakes, rng).to(dev), targets, view.budget.filler_items)
        fake.requires_grad_()
        outer = torch.optim.SGD([fake], lr=cfg.adv_lr, momentum=cfg.adv_momentum)
        best, best_hr = fake.detach().clone(), -1.0
        for _ in range(cfg.adv_epochs):
            current = fake.detach().clone()
            grads, scores = self._adversarial_gradient(real, current, targets, seed)
            hr = self._target_hit_ratio(scores, view.known_train, targets)
            if hr > best_hr:
                best, best_hr = current, hr
            if cfg.click_targets:
                grads[:, targets] = 0.0
            norms = grads.norm(dim=1, keepdim=True)
            fake.grad = torch.where(norms > 0, grads / norms.clamp_min(1e-30), torch.zeros_like(grads))
            outer.step()
            fake.data = self._project(fake.data, targets, view.budget.filler_items)
        profiles = sp.csr_matrix(best.cpu().numpy(), dtype=np.float32)
        profiles.eliminate_zeros()
        oracle.inject(profiles)
        return Injection(profiles)

    # -- the steps --------------------------------------------------------------------------

    def _initial_copies(self, view: PoisonView, n_fakes: int, rng: np.random.Generator) -> torch.Tensor:
        """The first known users with at most init_max_clicks items (cycled if too few)."""
        clicks = np.diff(view.known_train.indptr)
        qualified = np.flatnonzero((clicks <= self.config.init_max_clicks) & (clicks > 0))
        if len(qualified) == 0:
            raise ValueError(f"revadv: no known user has between 1 and {self.config.init_max_clicks} items to copy")
        rows = view.known_train[qualified[np.arange(n_fakes) % len(qualified)]].toarray().astype(np.float32)
        if self.config.projection == "budget":
            # Start within the budget: a random budget-sized part of each copied profile.
            noise = rng.random(rows.shape).astype(np.float32) * 1e-3
            rows = rows * (1 + noise)
        return torch.from_numpy(rows)

    def _project(self, values: torch.Tensor, targets: torch.Tensor, filler_budget: int) -> torch.Tensor:
        cfg = self.config
        keep = values > cfg.threshold
        if cfg.projection == "budget":
            fillers = values.masked_fill(~keep, -torch.inf)
            fillers[:, targets] = -torch.inf
            n = min(filler_budget, values.shape[1])
            top = torch.topk(fillers, n, dim=1)
            allowed = torch.zeros_like(keep)
            allowed.scatter_(1, top.indices, top.values > -torch.inf)
            allowed[:, targets] = keep[:, targets]
            keep = allowed
        projected = keep.to(values.dtype)
        if cfg.click_targets:
            projected[:, targets] = 1.0
        return projected

    def _adversarial_gradient(self, real: torch.Tensor, fake: torch.Tensor, targets: torch.Tensor, seed: int):
        """Train the surrogate on [real; fake] and differentiate the adversarial loss through
        its last `unroll_epochs` epochs: d loss / d fake, and the trained surrogate's scores."""
        cfg = self.config
        data = torch.cat([real, fake]).requires_grad_()
        weights = torch.where(data.detach() > 0, cfg.weight, 1.0)
        generator = make_generator(seed, data.device)  # the same surrogate start every outer step
        n_rows, n_items = data.shape
        item_table = torch.randn(n_items, cfg.dim, generator=generator, device=data.device) * cfg.init_std
        user_table = torch.randn(n_rows, cfg.dim, generator=generator, device=data.device) * cfg.init_std
        adam = DifferentiableAdam([user_table.requires_grad_(), item_table.requires_grad_()], cfg.lr, cfg.l2)
        for epoch in range(cfg.epochs):
            differentiable = epoch >= cfg.epochs - cfg.unroll_epochs
            source = data if differentiable else data.detach()
            order = torch.randperm(n_rows, generator=generator, device=data.device)
            for start in range(0, n_rows, cfg.batch_size):
                batch = order[start:start + cfg.batch_size]
                users, items = adam.params
                residual = source[batch] - users[batch] @ items.T
                adam.step((weights[batch] * residual.square()).sum(), differentiable)
        users, items = adam.params
        real_scores = users[: len(real)] @ items.T
        adversarial = -F.log_softmax(real_scores, dim=1)[:, targets].mean(1).sum()
        if cfg.unroll_epochs == 0:  # nothing unrolled: the data does not reach the loss
            return torch.zeros_like(fake), real_scores.detach()
        grads = torch.autograd.grad(adversarial, data)[0][len(real):]
        return grads.detach(), real_scores.detach()

    def _target_hit_ratio(self, scores: torch.Tensor, known: sp.csr_matrix, targets: torch.Tensor) -> float:
        """The share of known users with a target among their top selection_k untrained items."""
        masked = mask_rows_(scores.clone(), known)
        top = torch.topk(masked, min(self.config.selection_k, masked.shape[1]), dim=1).indices
        return float(torch.isin(top, targets).any(1).float().mean())
