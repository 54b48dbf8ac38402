"""GRO, gradient-based ranking optimization (Zhang et al., WSDM 2024): train the target together
with a student that imitates it, and teach the target to rank so as to mislead such a student.

Each step, for each training window:
1. The target serves its top-k list (k = 100) for the next item.
2. The student's list loss on that list (margin ranking between consecutive items, and between
   each list item and a sampled item outside it) is written through a one-hot swap tensor S
   [b, k, items], listed scores = S @ student_scores, so the loss is differentiable in S.
3. For each rank r the item j* with the largest dLoss/dS[r, j] is the swap that would hurt the
   student most; S' = S - onehot(j*). The swap loss mean(ReLU(S' @ target_logits)) =
   mean(ReLU(z[listed_r] - z[j*_r])) pushes the target to rank j* above its listed item.
4. Target loss = its own loss + lambda * swap loss; the student steps on its list loss.

Because the listed scores are linear in S, dLoss/dS[b, r, j] = g[b, r] * s[b, j] with g the
gradient for rank r's listed score: j* is the student's best item where g > 0 and its worst
where g < 0. We use that closed form instead of materializing S (b x k x items floats).

Deviation: GRO's code applies the swap loss at every labelled position of a window; we apply it
at the window's last position, the one the oracle serves (one more query per batch, and no
[b, L, items] logits).

Status: on ML-100k (grids/extraction/gro-ml100k.yaml) this collapses the target (HR@10 about
0.01 against 0.076 undefended) and raises the surrogate's agreement, so it does not yet
reproduce the paper. Not yet tried: fine-tuning a pretrained target (GRO's `--use_pretrained`),
the swap loss at every position, and lambda at the paper's Beauty scale (0.001).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from defenses.registry import register_defense
from models import ModelSpec, model_class
from models.losses import pairwise_loss
from models.sampling import make_generator, sample_outside
from models.sequential.training import make_optimizer, train_next_item


@dataclass(frozen=True)
class GROConfig:
    lam: float = 1.0  # swap-loss weight (the paper: 1 for ML-1M, 0.01 Steam, 0.001 Beauty)
    k: int = 100  # length of the list the student imitates
    margin: float = 0.5
    student: str = "same"  # the student's architecture; GRO's code uses the target's

    def __post_init__(self):
        if self.lam < 0 or self.k < 2 or self.margin < 0:
            raise ValueError("gro: lam must be >= 0, k >= 2, margin >= 0")
        if self.student != "same" and getattr(model_class(self.student), "input_kind", "users") != "sequences":
            raise ValueError(f"gro: student must be a sequential model or 'same', got {self.student!r}")


class SwapRegularizer:
    """Called once per target training batch: steps the student, returns lambda * swap loss."""

    def __init__(self, student, cfg: GROConfig, seed: int):
        self.student, self.cfg = student, cfg
        self.optimizer = make_optimizer(student)
        self.generator = make_generator(seed + 1, student.device)

    def __call__(self, target, batch) -> torch.Tensor:
        cfg = self.cfg
        target_logits = target.logits(target.query(batch.inputs))  # [b, n]
        k = min(cfg.k, target.n_items - 1)
        listed = target_logits.detach().topk(k, dim=1).indices  # [b, k], best first

        self.student.train()
        student_scores = self.student.score(batch.inputs)  # [b, n]
        listed_scores = student_scores.gather(1, listed)
        outside = sample_outside(listed, target.n_items, 1, self.generator).squeeze(-1)  # [b, k]
        student_loss = (pairwise_loss("hinge", listed_scores[:, :-1], listed_scores[:, 1:], cfg.margin)
                        + pairwise_loss("hinge", listed_scores, student_scores.gather(1, outside), cfg.margin))
        g, = torch.autograd.grad(student_loss, listed_scores, retain_graph=True)  # [b, k]
        self.optimizer.zero_grad(set_to_none=True)
        student_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.student.config.clip_norm)
        self.optimizer.step()

        scores = student_scores.detach()
        swap_to = torch.where(g > 0, scores.argmax(1, keepdim=True), scores.argmin(1, keepdim=True))  # [b, k]
        swap = (target_logits.gather(1, listed) - target_logits.gather(1, swap_to)).clamp(min=0)
        swap = torch.where(swap_to == listed, torch.zeros_like(swap), swap)  # S' row is zero then
        return cfg.lam * swap.mean()


@register_defense("gro")
class GRO:
    kind: ClassVar[str] = "training"
    Config = GROConfig
    targets: ClassVar[tuple[str, ...]] = ("sasrec", "bert4rec", "narm", "gru4rec", "stamp")

    def __init__(self, config: GROConfig | None = None):
        self.config = config if config is not None else GROConfig()

    def train(self, model, train, *, seed: int):
        """Train `model` (a sequential recommender) on `train` under GRO; returns it."""
        cfg = self.config
        if cfg.student in ("same", model.name):
            student = type(model)(model.n_items, model.config)
        else:
            student = ModelSpec.of(cfg.student, {"max_len": model.config.max_len}).build(0, model.n_items)
        student = student.to(model.device)
        student.reset_parameters(make_generator(seed + 7, student.device))
        return train_next_item(model, train, seed=seed, extra_loss=SwapRegularizer(student, cfg, seed))
