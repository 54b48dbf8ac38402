"""What every membership attack shares: the fit/score interface, the result (graded by the
harness, `attacks.membership.metrics.membership_metrics`), and the pieces of honest training (a held-out
shadow slice for checkpoint selection, never target labels).

An attack is fit on the shadow part's labelled difference vectors and, where it is
transductive, the target part's vectors without labels; it never sees target labels, which
`run_attack` keeps to grade the scores.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from recsec.models.evaluation import roc_auc


@dataclass(frozen=True)
class PartFeatures:
    """One part's users (members first), their difference vectors [n, dim] and labels (1 = member;
    None for the target part as the attacker sees it)."""

    users: np.ndarray
    vectors: np.ndarray
    labels: np.ndarray | None


class MembershipAttack:
    """`fit(shadow_x, shadow_y, target_x, seed=...) -> self`, then `score(x)`: higher = more
    likely a member; `threshold_` turns scores into decisions (score >= threshold_: member)."""

    threshold_: float

    def fit(self, shadow_x: np.ndarray, shadow_y: np.ndarray, target_x: np.ndarray, *, seed: int = 0):
        raise NotImplementedError

    def score(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class MembershipResult:
    """Scores for the target part's users (higher = more likely a member), the attack's decisions,
    and the true labels (1 = member) when the caller knew them (the attacker does not)."""

    users: np.ndarray
    scores: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray | None


def run_attack(attack: MembershipAttack, shadow: PartFeatures, target: PartFeatures, *,
               seed: int = 0) -> MembershipResult:
    """Fit `attack` on the shadow part (and unlabeled target vectors), score the target part."""
    attack.fit(shadow.vectors, shadow.labels, target.vectors, seed=seed)
    scores = attack.score(target.vectors)
    return MembershipResult(target.users, scores, (scores >= attack.threshold_).astype(np.int64),
                            None if target.labels is None else np.asarray(target.labels, dtype=np.int64))


# --------------------------------------------------------------------------- training pieces


def holdout_split(labels: np.ndarray, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out), stratified: round(share * n_class) of each class held out."""
    if not 0 < share < 1:
        raise ValueError(f"holdout share must be in (0, 1), got {share}")
    held = []
    for value in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == value))
        held.append(members[: max(1, round(share * len(members)))])
    held_out = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


class Standardizer:
    """Per-feature centring and scaling with statistics of the data it was fit on."""

    def __init__(self, x: np.ndarray):
        self.mean = x.mean(axis=0)
        self.std = x.std(axis=0) + 1e-8

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - self.mean) / self.std).astype(np.float32))


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


@contextmanager
def single_threaded():
    """Run torch on one thread inside the block (restored after). The attacks' matrices are tiny:
    a second thread costs more in synchronization than it saves, and on a busy machine the
    spinning threads of LAPACK and small matmuls turn milliseconds into seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def seeded_init(seed: int):
    """Modules built inside draw their initial weights from torch's global generator seeded with
    `seed`; the caller's generator state is restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class BestCheckpoint:
    """Keeps a copy of the module's weights whenever the validation score improves."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.best = -np.inf
        self.state = copy.deepcopy(module.state_dict())

    def update(self, score: float) -> None:
        if score > self.best:
            self.best = score
            self.state = copy.deepcopy(self.module.state_dict())

    def restore(self) -> None:
        self.module.load_state_dict(self.state)


def batches(n: int, batch_size: int, generator: torch.Generator):
    """Shuffled index batches covering 0..n-1 once."""
    order = torch.randperm(n, generator=generator)
    return order.split(batch_size)


class NetworkAttack(MembershipAttack):
    """An attack scored by a network on standardized vectors: score = P(member) = sigmoid(logit),
    decided at 0.5. `fit` sets `standardize_` and `model_`; `logits` says how `model_` gives one."""

    threshold_ = 0.5
    standardize_: Standardizer
    model_: nn.Module

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @single_threaded()
    def score(self, x: np.ndarray) -> np.ndarray:
        return torch.sigmoid(self._eval_logits(self.standardize_(x))).numpy()

    def held_out_auc(self, x: torch.Tensor, labels: np.ndarray) -> float:
        """ROC AUC on standardized held-out shadow vectors: what picks the checkpoint."""
        return roc_auc(self._eval_logits(x).numpy(), labels)

    @torch.no_grad()
    def _eval_logits(self, x: torch.Tensor) -> torch.Tensor:
        self.model_.eval()
        return self.logits(x).double()
