"""Next-item training shared by every sequential model: batches of left-padded windows drawn on the
model's device, the seeded AdamW loop with gradient clipping and best-epoch selection, and the
two losses the papers use (softmax cross-entropy, and SASRec's sampled binary cross-entropy)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from recsec.models.optim import adam, adamw
from recsec.models.sequential.sequences import Sequences, left_windows, ragged_range
from recsec.models.losses import bpr_loss
from recsec.models.sampling import InteractionSampler, make_generator



class SequentialRecommender(Protocol):
    """What the training loops use of a sequential model (models.sequential.base's class, which
    calls them: typed here by its shape, so that neither module imports the other's)."""

    name: str
    config: Any
    n_items: int
    pad: int
    train_on: str
    item_embedding: torch.nn.Embedding

    def training_loss(self, batch: "Batch") -> torch.Tensor: ...
    def reset_parameters(self, generator: torch.Generator) -> None: ...
    def logits(self, hidden: torch.Tensor) -> torch.Tensor: ...
    def score_pairs(self, sequences: torch.Tensor, items: torch.Tensor) -> torch.Tensor: ...
    def recommend(self, sequences, k: int, *args, **kwargs) -> np.ndarray: ...


class BestEpoch:
    """Keeps the weights of the best-scoring epoch seen so far (higher is better) and puts them
    back at the end: checkpoint selection on a held-out signal."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.score, self.state = model, float("-inf"), None

    def offer(self, score: float) -> None:
        if score > self.score:
            self.score, self.state = score, copy.deepcopy(self.model.state_dict())

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)


TRAINING_UNITS = ("prefixes", "sequences")
CLIP_MODES = ("global", "per_parameter", "none")


def clip_gradients(parameters, max_norm: float, mode: str) -> None:
    """"global": one norm over all gradients (torch's usual); "per_parameter": each tensor's
    gradient clipped on its own, as the extraction and GRO code does (a loop of clip_grad_norm_)."""
    if mode == "global":
        torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)
    elif mode == "per_parameter":
        for p in parameters:
            torch.nn.utils.clip_grad_norm_(p, max_norm)
    elif mode != "none":
        raise ValueError(f"clip must be one of {CLIP_MODES}, got {mode!r}")


class WindowSampler:
    """Training examples as windows of `length` item ids ending at an example's last item,
    left-padded, in a fresh seeded order every epoch.

    unit "sequences": per user with at least 2 items, a window ending at the latest item and, over
    a longer history, more ending every `length // 2` items back while a full window fits (the
    extraction paper's code slides windows so; SASRec's own code keeps only the latest).
    unit "prefixes": one example per item that has a predecessor, ending at that item (so the
    window is a prefix and the item it predicts).
    """

    def __init__(self, train: Sequences, *, unit: str, length: int, pad: int, device: torch.device,
                 generator: torch.Generator):
        if unit not in TRAINING_UNITS:
            raise ValueError(f"unknown training unit {unit!r}; expected one of {TRAINING_UNITS}")
        self.train, self.length, self.pad, self.generator = train, length, pad, generator
        self.device = torch.device(device)
        lengths = train.lengths()
        if unit == "sequences":
            step = max(1, length // 2)
            per_user = np.where(lengths >= 2, 1 + np.maximum(lengths - length, 0) // step, 0)
            users = np.repeat(np.arange(len(train)), per_user)
            ends = train.offsets[users + 1] - step * ragged_range(np.zeros(len(train)), per_user)
        else:
            users = np.repeat(np.arange(len(train)), np.maximum(lengths - 1, 0))
            ends = ragged_range(train.offsets[:-1] + 2, np.maximum(lengths - 1, 0))
        if len(users) == 0:
            raise ValueError(f"{train.name}: no sequence has 2 items, so there is no next item to learn")
        to = lambda array: torch.from_numpy(np.asarray(array, dtype=np.int64)).to(self.device)  # noqa: E731
        self.items = to(train.items)
        self.users, self.starts, self.ends = to(users), to(train.offsets[users]), to(ends)

    def __len__(self) -> int:
        return len(self.users)

    def batches(self, batch_size: int) -> Iterator["Batch"]:
        order = torch.randperm(len(self), generator=self.generator, device=self.device)
        for start in range(0, len(self), batch_size):
            chosen = order[start : start + batch_size]
            window = left_windows(self.items, self.starts[chosen], self.ends[chosen], self.length, self.pad)
            yield Batch(self.users[chosen], window, self)

    @cached_property
    def _history(self) -> InteractionSampler:
        return InteractionSampler(self.train.to_matrix(), self.device, self.generator)

    def negatives(self, users: torch.Tensor, per_user: int) -> torch.Tensor:
        """[len(users), per_user] items uniform over those each user never had (SASRec's rule)."""
        return self._history.negatives(users, per_user=per_user).view(len(users), per_user)


@dataclass(frozen=True)
class Batch:
    """A batch of training windows [b, max_len + 1]: inputs are the first max_len columns, and
    targets[:, t] is the item after inputs[:, : t + 1]."""

    users: torch.Tensor  # [b], rows of the training Sequences
    window: torch.Tensor  # [b, max_len + 1], left-padded
    sampler: WindowSampler
    # What the model's training loss computed on this batch and a training-time defense reuses
    # (BERT4Rec's cloze draw and encoder output): GRO's code puts its swap loss on the same
    # masked positions and forward pass as the target's own loss.
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def inputs(self) -> torch.Tensor:
        return self.window[:, :-1]

    @property
    def targets(self) -> torch.Tensor:
        return self.window[:, 1:]

    @property
    def generator(self) -> torch.Generator:
        return self.sampler.generator

    def negatives(self, per_user: int) -> torch.Tensor:
        return self.sampler.negatives(self.users, per_user)


def next_item_cross_entropy(model: "SequentialRecommender", hidden: torch.Tensor,
                            targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over all real items, for each hidden vector [..., d] whose target
    [...] is not padding."""
    keep = targets != model.pad
    if not bool(keep.any()):  # e.g. a cloze batch where nothing was masked: no signal, no NaN
        return hidden.sum() * 0.0
    return F.cross_entropy(model.logits(hidden[keep]), targets[keep])


def sampled_binary_cross_entropy(model: "SequentialRecommender", hidden: torch.Tensor, targets: torch.Tensor,
                                 negatives: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(target score) - log(1 - sigmoid(negative score)) at every non-padding
    position; hidden [b, L, d], targets and negatives [b, L]."""
    keep = targets != model.pad
    positive = (hidden * model.item_embedding(targets)).sum(-1)[keep]
    negative = (hidden * model.item_embedding(negatives)).sum(-1)[keep]
    return -(F.logsigmoid(positive) + F.logsigmoid(-negative)).mean()


def make_optimizer(model, lr: float | None = None, weight_decay: float | None = None) -> torch.optim.AdamW:
    """AdamW; decay only on matrices and embeddings, not biases or norms (BERT4Rec's code).
    lr and weight_decay default to the model's config."""
    cfg = model.config
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    weight_decay = cfg.weight_decay if weight_decay is None else weight_decay
    return adamw([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr if lr is None else lr)


def validation_ndcg(lists: np.ndarray, targets: np.ndarray) -> float:
    """NDCG@10 with one relevant item per row (model selection only; the harness's reported
    metrics are computed in harness/metrics.py)."""
    rank = np.argmax(lists == targets[:, None], axis=1)
    hit = (lists == targets[:, None]).any(axis=1)
    return float(np.where(hit, 1.0 / np.log2(rank + 2), 0.0).mean()) if len(targets) else 0.0


def train_next_item(
    model: "SequentialRecommender",
    train: Sequences,
    *,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
    valid: tuple[Sequences, np.ndarray] | None = None,
    extra_loss: Callable[["SequentialRecommender", "Batch"], torch.Tensor] | None = None,
    epochs: int | None = None,
    reset: bool = True,
    clip: str | None = None,
) -> "SequentialRecommender":
    """`model.training_loss` on `model.train_on` windows for `epochs` (default: the config's)
    epochs; returns the model.

    `extra_loss(model, batch)`, when given, is added to each batch's loss: the hook a
    training-time defense uses (e.g. GRO's swap loss, defenses/extraction/gro.py). `reset=False`
    continues from the model's current weights (fine-tuning a trained model). `clip` overrides
    the config's clipping mode. With `valid`, the best epoch's weights are kept, else the last."""
    cfg = model.config
    if train.n_items != model.n_items:
        raise ValueError(f"{model.name}: training sequences are over {train.n_items} items, "
                         f"model was built for {model.n_items}")
    device = model.device
    # Dropout draws from torch's global generator: fork it and seed it, so one seed fixes the
    # whole run without touching the caller's random state.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.enable_grad():
        torch.manual_seed(seed)
        generator = make_generator(seed, device)
        if reset:
            model.reset_parameters(generator)
        sampler = WindowSampler(train, unit=model.train_on, length=cfg.max_len + 1, pad=model.pad,
                                device=device, generator=generator)
        optimizer = make_optimizer(model)
        best = BestEpoch(model)
        for epoch in range(cfg.epochs if epochs is None else epochs):
            model.train()
            total, n_batches = torch.zeros((), device=device), 0
            for batch in sampler.batches(cfg.batch_size):
                loss = model.training_loss(batch)
                if extra_loss is not None:
                    loss = loss + extra_loss(model, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip_gradients(model.parameters(), cfg.clip_norm, clip or cfg.clip)
                optimizer.step()
                total += loss.detach()
                n_batches += 1
            if on_epoch is not None:
                on_epoch(epoch, float(total) / n_batches)
            if valid is not None:
                prefixes, targets = valid
                best.offer(validation_ndcg(model.recommend(prefixes, 10), np.asarray(targets)))
        best.restore()
    model.eval()
    return model


def train_next_item_pairs(model, train: Sequences, *, epochs: int, batch_size: int, lr: float, max_len: int,
                          pad: int, seed: int):
    """BPR on every (prefix, next item) pair against one item the user never had, through
    `model.score_pairs(prefixes, items)`. How the stealing family's PTD stage trains a clone whose
    scores are not a sequential model's own (e.g. fused with auxiliary item vectors)."""
    device = model.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        generator = make_generator(seed, device)
        sampler = WindowSampler(train, unit="prefixes", length=max_len + 1, pad=pad, device=device, generator=generator)
        optimizer = adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            for batch in sampler.batches(batch_size):
                items = torch.stack([batch.targets[:, -1], batch.negatives(1)[:, 0]], dim=1)
                scores = model.score_pairs(batch.inputs, items)
                loss = bpr_loss(scores[:, :1], scores[:, 1:])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    model.eval()
    return model
