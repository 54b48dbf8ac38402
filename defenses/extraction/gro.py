"""GRO, gradient-based ranking optimization (Zhang et al., WSDM 2024): train the target together
with a student that imitates it, and teach the target to rank so as to mislead such a student.

Each step, at each labelled position of each training window (`positions: all`, GRO's code: every
position of a SASRec window, every masked position of a BERT4Rec one) or only at the window's
last position, the one the oracle serves (`positions: last`):
1. The target ranks its top-k list (k = 100) for the next item.
2. The student's list loss on that list (margin ranking between consecutive items, and between
   each list item and a sampled item, models.losses.list_loss) is written through a one-hot swap tensor S
   [m, k, items], listed scores = S @ student_scores, so the loss is differentiable in S.
3. For each rank r the item j* with the largest dLoss/dS[r, j] is the swap that would hurt the
   student most; S' = S - onehot(j*). The swap loss mean(ReLU(S' @ target_logits)) =
   mean(ReLU(z[listed_r] - z[j*_r])) pushes the target to rank j* above its listed item.
4. Target loss = its own loss + lambda * swap loss; the student steps on its list loss.

Because the listed scores are linear in S, dLoss/dS[m, r, j] = g[m, r] * s[m, j] with g the
gradient for rank r's listed score: j* is the student's best item where g > 0 and its worst
where g < 0. We use that closed form instead of materializing S (m x k x items floats). Where
g = 0 (the rank's hinges are all satisfied: most ranks once the student separates the list)
every entry ties and GRO's code swaps with item 0 (argmax returns the first maximum), so the
swap loss pushes every listed item below item 0 (`ties: first_item`, the default); `ties: skip`
swaps nothing there (our earlier rule).

As in GRO's code: the swap loss sits on the masked positions and forward pass of the target's own
cloze loss; the student reads the same masked tokens; its sampled items come from a softmax that
still allows listed items; target and student gradients are clipped at 5 per parameter
(`clip: global` is ours). GRO's code runs GRO for BERT4Rec only: its SASRec branch flattens
labels.nonzero() of a 2-D label tensor into one index list and never flattens SASRec's logits,
so it cannot run. GRO on SASRec here is our extension.

`pretrained: true` (GRO's `--use_pretrained`, its setting for most datasets) first trains the
target as usual, then fine-tunes it under GRO for `epochs` (default: the target's own).

Measured (grids/extraction/gro-ml100k.yaml, CPU cut, one seed; benchmarks/reproduction/extraction.md): BERT4Rec
from scratch at lambda 1 lowers the extraction surrogate's HR@10 by 19% but halves the target's
own HR@10 and raises agreement; the tie rule decides about two thirds of the swaps; `skip`
behaves alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from recsec.defenses.base import Defense
from recsec.defenses.registry import register_defense
from recsec.models import ModelSpec, model_class
from recsec.models.losses import list_loss
from recsec.models.sampling import NEGATIVE_RULES, draw_negatives, make_generator
from recsec.models.sequential.training import CLIP_MODES, clip_gradients, make_optimizer, train_next_item
from recsec.harness import streams

STUDENT_INIT = streams.purpose("gro: the student's initial weights", offset=7)


POSITIONS = ("all", "last")
TIES = ("first_item", "skip")


@dataclass(frozen=True)
class GROConfig:
    lam: float = 1.0  # swap-loss weight (the paper: 1 for ML-1M, 0.01 Steam, 0.001 Beauty)
    k: int = 100  # length of the list the student imitates
    margin: float = 0.5
    student: str = "same"  # the student's architecture; GRO's code uses the target's
    positions: str = "all"  # "all" labelled positions (GRO's code) or the served "last" one
    pretrained: bool = True  # train the target normally first, then fine-tune under GRO
    epochs: int | None = None  # GRO epochs (after pretraining, if any); None: the target's own
    # Where the student's gradient for a rank is zero: "first_item" swaps with item 0 (what
    # argmax over an all-zero row returns in GRO's code), "skip" swaps nothing (ours).
    ties: str = "first_item"
    negatives: str = "softmax"  # the student's sampled items (models.sampling.draw_negatives)
    clip: str = "per_parameter"  # target and student gradients during GRO ("global": ours)

    def __post_init__(self):
        if self.lam < 0 or self.k < 2 or self.margin < 0:
            raise ValueError("gro: lam must be >= 0, k >= 2, margin >= 0")
        for name, allowed in (("positions", POSITIONS), ("ties", TIES), ("negatives", NEGATIVE_RULES),
                              ("clip", CLIP_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"gro: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"gro: epochs must be >= 1, got {self.epochs}")
        if self.student != "same" and model_class(self.student).input_kind != "sequences":
            raise ValueError(f"gro: student must be a sequential model or 'same', got {self.student!r}")


def swap_targets(g: torch.Tensor, student_scores: torch.Tensor, ties: str) -> torch.Tensor:
    """For each rank, the item j* = argmax_j dLoss/dS[m, r, j] = argmax_j g[m, r] * s[m, j]: the
    student's best item where g > 0, its worst where g < 0. Where g = 0 every j ties: item 0
    under ties "first_item" (torch's argmax returns the first maximum), -1 (no swap) under "skip".
    g [m, k], student_scores [m, n] -> [m, k]."""
    best = student_scores.argmax(1, keepdim=True).expand_as(g)
    worst = student_scores.argmin(1, keepdim=True).expand_as(g)
    tied = torch.zeros_like(best) if ties == "first_item" else torch.full_like(best, -1)
    return torch.where(g > 0, best, torch.where(g < 0, worst, tied))


def swap_loss(target_logits: torch.Tensor, listed: torch.Tensor, swap_to: torch.Tensor) -> torch.Tensor:
    """mean(ReLU(S' @ z)) with S' = S - onehot(j*): ReLU(z[listed_r] - z[j*_r]) per rank, zero
    where j* is the listed item itself or there is no swap (j* = -1)."""
    no_swap = (swap_to < 0) | (swap_to == listed)
    gap = target_logits.gather(1, listed) - target_logits.gather(1, swap_to.clamp(min=0))
    return torch.where(no_swap, torch.zeros_like(gap), gap.clamp(min=0)).mean()


class SwapRegularizer:
    """Called once per target training batch: steps the student, returns lambda * swap loss."""

    def __init__(self, student, cfg: GROConfig, seed: int):
        self.student, self.cfg = student, cfg
        self.optimizer = make_optimizer(student)
        self.generator = make_generator(streams.SECOND_TRAINING.seed(seed), student.device)
        self.ranks, self.tied_ranks = 0, 0  # how often the tie rule decides the swap


    def __call__(self, target, batch) -> torch.Tensor:
        cfg = self.cfg
        target_logits, student_scores = self.logits(target, batch)  # [m, n] each
        k = min(cfg.k, target.n_items - 1)
        listed = target_logits.detach().topk(k, dim=1).indices  # [m, k], best first

        listed_scores = student_scores.gather(1, listed)
        negatives = draw_negatives(cfg.negatives, listed, target.n_items, self.generator)
        student_loss = list_loss(listed_scores, student_scores.gather(1, negatives), cfg.margin)
        g, = torch.autograd.grad(student_loss, listed_scores, retain_graph=True)  # [m, k]
        self.optimizer.zero_grad(set_to_none=True)
        student_loss.backward()
        clip_gradients(self.student.parameters(), self.student.config.clip_norm, cfg.clip)
        self.optimizer.step()
        self.ranks += g.numel()
        self.tied_ranks += int((g == 0).sum())
        return cfg.lam * swap_loss(target_logits, listed, swap_targets(g, student_scores.detach(), cfg.ties))

    def logits(self, target, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The target's logits (differentiable in its weights) and the student's scores at the
        positions the swap loss covers: [m, items] each. At every position, the target's logits
        come from the forward pass of its own loss on this batch (BERT4Rec: the same masked
        positions), and the student reads the same tokens, as in GRO's code."""
        self.student.train()
        if self.cfg.positions == "last" or not target.encodes_positions:
            return target.score(batch.inputs), self.student.score(batch.inputs)
        if target.objective == "cloze":  # BERT4Rec: the masked positions of the target's own draw
            keep, tokens, hidden = batch.cache.get("cloze") or (*target.cloze(batch.window[:, 1:], batch.generator),
                                                                None)
        else:  # causal models: every position whose next item is real
            keep, tokens, hidden = batch.targets != target.pad, batch.inputs, batch.cache.get("hidden")
        hidden = target.encode(tokens) if hidden is None else hidden
        return target.logits(hidden[keep]), self.student.logits(self.student.encode(tokens)[keep])


@register_defense("gro")
class GRO(Defense):
    kind: ClassVar[str] = "training"
    Config = GROConfig
    targets: ClassVar[tuple[str, ...]] = ("sasrec", "bert4rec", "narm", "gru4rec", "stamp")

    def train(self, model, train, *, seed: int, valid=None):
        """Train `model` (a sequential recommender) on `train` under GRO; returns it. `valid`
        (prefixes, next items) selects the pretrained target's best epoch (GRO's code loads
        best_acc_model.pth); the GRO phase keeps its last epoch, as the code tests it."""
        cfg = self.config
        if cfg.student in ("same", model.name):
            student = type(model)(model.n_items, model.config)
        elif cfg.positions == "all" and model.encodes_positions:
            raise ValueError(f"gro: positions 'all' reads the target's own tokens at every position, so the "
                             f"student must be the target's architecture ({model.name}), got {cfg.student!r}; "
                             f"use positions: last for another student")
        else:
            student = ModelSpec.of(cfg.student, {"max_len": model.config.max_len}).build(0, model.n_items)
        student = student.to(model.device)
        student.reset_parameters(make_generator(STUDENT_INIT.seed(seed), student.device))
        if cfg.pretrained:
            train_next_item(model, train, seed=seed, valid=valid)
        regularizer = SwapRegularizer(student, cfg, seed)
        train_next_item(model, train, seed=seed, extra_loss=regularizer, epochs=cfg.epochs,
                        reset=not cfg.pretrained, clip=cfg.clip)
        # Logged with the target: the share of ranks where the tie rule, not the student, chose the swap.
        self.stats = {"gro_tied_share": regularizer.tied_ranks / max(regularizer.ranks, 1)}
        return model
