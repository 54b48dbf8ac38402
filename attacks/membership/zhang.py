"""Zhang et al., "Membership Inference Attacks Against Recommender Systems" (CCS 2021), code
MIARS: an MLP attack model trained on the shadow part's difference vectors, and the
unsupervised k-means variant.

Departures from the published code, each for a sound, comparable benchmark:
- the MLP (100-32-8-2 there; one logit here, the same decision) trains with Adam on minibatches
  of standardized vectors instead of SGD one vector at a time, and the epoch kept is the best on
  a held-out slice of the shadow part (the published code keeps the last of 20 epochs);
- the published k-means names cluster 1 "member" whichever it is; here a rule orients it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from recsec.attacks.membership.base import (BestCheckpoint, MembershipAttack, NetworkAttack, Standardizer, batches,
                                     holdout_split, mlp, seeded_init, single_threaded)
from recsec.models.config import check_fields
from recsec.models.optim import adam
from recsec.harness import streams

CLASSIFIER_HOLDOUT = streams.purpose("zhang_mlp: the shadow part it validates on", 0x2A)
KMEANS = streams.purpose("k-means initialisation", 0x4B)


@dataclass(frozen=True)
class ZhangMLPConfig:
    hidden: tuple[int, ...] = (32, 8)
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    holdout: float = 0.2  # share of the shadow part held out to pick the epoch

    def __post_init__(self):
        check_fields("zhang_mlp", self, at_least_one=("epochs", "batch_size"), positive=("lr",),
                     non_negative=("weight_decay",))
        if not 0 < self.holdout < 1:
            raise ValueError(f"zhang_mlp: holdout must be in (0, 1), got {self.holdout}")


class ZhangMLP(NetworkAttack):
    """Supervised attack: P(member | difference vector) from an MLP trained on the shadow part."""

    def __init__(self, config: ZhangMLPConfig = ZhangMLPConfig()):
        self.config = config

    @single_threaded()
    def fit(self, shadow_x, shadow_y, target_x=None, *, seed: int = 0):
        cfg = self.config
        shadow_y = np.asarray(shadow_y)
        self.standardize_ = Standardizer(shadow_x)
        with seeded_init(seed):
            self.model_ = mlp((shadow_x.shape[1], *cfg.hidden, 1))
        train, held_out = holdout_split(shadow_y, cfg.holdout, CLASSIFIER_HOLDOUT.rng(seed))
        x, y = self.standardize_(shadow_x), torch.as_tensor(shadow_y, dtype=torch.float32)
        optimizer = adam(self.model_.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        generator = torch.Generator().manual_seed(seed)
        best = BestCheckpoint(self.model_)
        for _ in range(cfg.epochs):
            self.model_.train()
            for batch in batches(len(train), cfg.batch_size, generator):
                rows = train[batch.numpy()]
                loss = F.binary_cross_entropy_with_logits(self.model_(x[rows]).squeeze(1), y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            best.update(self.held_out_auc(x[held_out], shadow_y[held_out]))
        best.restore()
        return self

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model_(x).squeeze(1)


# --------------------------------------------------------------------------- k-means

ORIENTATIONS = ("norm", "shadow")


@dataclass(frozen=True)
class ZhangKMeansConfig:
    restarts: int = 10  # k-means++ runs; the one with the lowest inertia is kept
    iterations: int = 100
    # Which cluster is "member": "norm" (no labels): the centre nearer the origin, i.e. the users
    # whose served list sits closest to their own history, as a personalized list does;
    # "shadow": the centre nearer the mean shadow member vector (uses the shadow labels).
    orient: str = "norm"

    def __post_init__(self):
        check_fields("zhang_kmeans", self, at_least_one=("restarts", "iterations"))
        if self.orient not in ORIENTATIONS:
            raise ValueError(f"zhang_kmeans: orient must be one of {ORIENTATIONS}, got {self.orient!r}")


class ZhangKMeans(MembershipAttack):
    """Unsupervised attack: 2-means on the target part's difference vectors.

    score = ||x - c_non||^2 - ||x - c_member||^2, so a positive score means nearer the member
    centre (the decision rule of k-means itself, threshold 0).
    """

    threshold_ = 0.0

    def __init__(self, config: ZhangKMeansConfig = ZhangKMeansConfig()):
        self.config = config

    def fit(self, shadow_x, shadow_y, target_x, *, seed: int = 0):
        cfg = self.config
        centres = kmeans(np.asarray(target_x, dtype=np.float64), 2, restarts=cfg.restarts,
                         iterations=cfg.iterations, rng=KMEANS.rng(seed))
        if cfg.orient == "norm":
            member = int(np.argmin(np.linalg.norm(centres, axis=1)))
        else:
            anchor = np.asarray(shadow_x)[np.asarray(shadow_y) == 1].mean(axis=0)
            member = int(np.argmin(np.linalg.norm(centres - anchor, axis=1)))
        self.member_centre_, self.nonmember_centre_ = centres[member], centres[1 - member]
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return (np.square(x - self.nonmember_centre_).sum(1) - np.square(x - self.member_centre_).sum(1))


def kmeans(x: np.ndarray, k: int, *, restarts: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; the centres [k, d] of the lowest-inertia restart."""
    best_centres, best_inertia = None, np.inf
    for _ in range(restarts):
        centres = _kmeans_plus_plus(x, k, rng)
        for _ in range(iterations):
            assign = _squared_distances(x, centres).argmin(axis=1)
            # An emptied cluster keeps its centre rather than becoming nan.
            new = np.stack([x[assign == c].mean(axis=0) if (assign == c).any() else centres[c]
                            for c in range(k)])
            if np.allclose(new, centres):
                break
            centres = new
        inertia = _squared_distances(x, centres).min(axis=1).sum()
        if inertia < best_inertia:
            best_centres, best_inertia = centres, inertia
    return best_centres


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = _squared_distances(x, np.stack(centres)).min(axis=1)
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centres.append(x[rng.choice(len(x), p=p)])
    return np.stack(centres)


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.square(x[:, None, :] - centres[None, :, :]).sum(axis=2)
