"""GRO, gradient-based ranking optimization (Zhang et al., WSDM 2024): train the target together
with a student that imitates it, and teach the target to rank so as to mislead such a student.

Each step, at each labelled position of each training window (`positions: all`, GRO's code: every
position of a SASRec window, every masked position of a BERT4Rec one) or only at the window's
last position, the one the oracle serves (`positions: last`):
1. The target ranks its top-k list (k = 100) for the next item.
2. The student's list loss on that list (margin ranking between consecutive items, and between
   each list item and a sampled item outside it) is written through a one-hot swap tensor S
   [m, k, items], listed scores = S @ student_scores, so the loss is differentiable in S.
3. For each rank r the item j* with the largest dLoss/dS[r, j] is the swap that would hurt the
   student most; S' = S - onehot(j*). The swap loss mean(ReLU(S' @ target_logits)) =
   mean(ReLU(z[listed_r] - z[j*_r])) pushes the target to rank j* above its listed item.
4. Target loss = its own loss + lambda * swap loss; the student steps on its list loss.

Because the listed scores are linear in S, dLoss/dS[m, r, j] = g[m, r] * s[m, j] with g the
gradient for rank r's listed score: j* is the student's best item where g > 0 and its worst
where g < 0. We use that closed form instead of materializing S (m x k x items floats). Where
g = 0 (the rank's hinges are all satisfied) every entry ties; GRO's code then swaps with item 0,
an artifact of argmax over ties, and we swap nothing.

`pretrained: true` (GRO's `--use_pretrained`, its setting for most datasets) first trains the
target as usual, then fine-tunes it under GRO for `epochs` (default: the target's own).

Measured (grids/extraction/gro-ml100k-gpu.yaml, README): pretrained, every position, lambda
0.01-0.1 keeps the target's HR@10 and lowers the extraction surrogate's Agr@10 by 1-4 points, a
much smaller effect than the paper reports; lambda 1 collapses SASRec. Trained from scratch at
the served position only (our first version), lambda 0.1-1 collapsed the target on ML-100k.
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


POSITIONS = ("all", "last")


@dataclass(frozen=True)
class GROConfig:
    lam: float = 1.0  # swap-loss weight (the paper: 1 for ML-1M, 0.01 Steam, 0.001 Beauty)
    k: int = 100  # length of the list the student imitates
    margin: float = 0.5
    student: str = "same"  # the student's architecture; GRO's code uses the target's
    positions: str = "all"  # "all" labelled positions (GRO's code) or the served "last" one
    pretrained: bool = True  # train the target normally first, then fine-tune under GRO
    epochs: int | None = None  # GRO epochs (after pretraining, if any); None: the target's own

    def __post_init__(self):
        if self.lam < 0 or self.k < 2 or self.margin < 0:
            raise ValueError("gro: lam must be >= 0, k >= 2, margin >= 0")
        if self.positions not in POSITIONS:
            raise ValueError(f"gro: positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"gro: epochs must be >= 1, got {self.epochs}")
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
        target_logits, student_scores = self.logits(target, batch)  # [m, n] each
        k = min(cfg.k, target.n_items - 1)
        listed = target_logits.detach().topk(k, dim=1).indices  # [m, k], best first

        listed_scores = student_scores.gather(1, listed)
        outside = sample_outside(listed, target.n_items, 1, self.generator).squeeze(-1)  # [m, k]
        student_loss = (pairwise_loss("hinge", listed_scores[:, :-1], listed_scores[:, 1:], cfg.margin)
                        + pairwise_loss("hinge", listed_scores, student_scores.gather(1, outside), cfg.margin))
        g, = torch.autograd.grad(student_loss, listed_scores, retain_graph=True)  # [m, k]
        self.optimizer.zero_grad(set_to_none=True)
        student_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.student.config.clip_norm)
        self.optimizer.step()

        scores = student_scores.detach()
        swap_to = torch.where(g > 0, scores.argmax(1, keepdim=True), scores.argmin(1, keepdim=True))  # [m, k]
        swap = (target_logits.gather(1, listed) - target_logits.gather(1, swap_to)).clamp(min=0)
        no_swap = (swap_to == listed) | (g == 0)  # S' row is zero: nothing to swap
        return cfg.lam * torch.where(no_swap, torch.zeros_like(swap), swap).mean()

    def logits(self, target, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The target's logits (differentiable in its weights) and the student's scores at the
        positions the swap loss covers: [m, items] each."""
        self.student.train()
        if self.cfg.positions == "last" or not hasattr(target, "encode"):
            return target.score(batch.inputs), self.student.score(batch.inputs)
        if target.objective == "cloze":  # BERT4Rec: the masked positions of a fresh cloze draw
            keep, tokens = target.cloze(batch.window[:, 1:], batch.generator)
        else:  # causal models: every position whose next item is real
            keep, tokens = batch.targets != target.pad, batch.inputs
        return (target.logits(target.encode(tokens)[keep]),
                self.student.logits(self.student.encode(tokens)[keep]))


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
        elif cfg.positions == "all" and hasattr(model, "encode"):
            raise ValueError(f"gro: positions 'all' reads the target's own tokens at every position, so the "
                             f"student must be the target's architecture ({model.name}), got {cfg.student!r}; "
                             f"use positions: last for another student")
        else:
            student = ModelSpec.of(cfg.student, {"max_len": model.config.max_len}).build(0, model.n_items)
        student = student.to(model.device)
        student.reset_parameters(make_generator(seed + 7, student.device))
        if cfg.pretrained:
            train_next_item(model, train, seed=seed)
        return train_next_item(model, train, seed=seed, extra_loss=SwapRegularizer(student, cfg, seed),
                               epochs=cfg.epochs, reset=not cfg.pretrained)
