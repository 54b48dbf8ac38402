"""A one-feature baseline: how far the centre of a user's served list lies from the centre of
their history, the length of Zhang et al.'s difference vector. A personalized list sits near
its user's history, a popularity list does not, so a short vector says "member".

It learns nothing but a threshold, and its ROC AUC does not depend on the item vectors' basis:
where it matches the learned attacks, the served lists, not the attack, separate the users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.attacks.membership.base import MembershipAttack
from recsec.models.evaluation import roc_auc


@dataclass(frozen=True)
class DifferenceNormConfig:
    pass


class DifferenceNorm(MembershipAttack):
    """score = -||x||; the threshold maximizes balanced accuracy on the shadow part."""

    threshold_: float

    def __init__(self, config: DifferenceNormConfig = DifferenceNormConfig()):
        self.config = config

    def fit(self, shadow_x, shadow_y, target_x=None, *, seed: int = 0):
        scores, labels = self.score(shadow_x), np.asarray(shadow_y)
        self.threshold_ = best_threshold(scores, labels)
        self.shadow_auc_ = roc_auc(scores, labels)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        return -np.linalg.norm(np.asarray(x, dtype=np.float64), axis=1)


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The cut (score >= cut: member) with the best balanced accuracy, midway between scores."""
    order = np.sort(np.unique(scores))
    cuts = np.r_[order[0], (order[1:] + order[:-1]) / 2, order[-1] + 1]
    members, nonmembers = scores[labels == 1], scores[labels == 0]
    tpr = (members[None, :] >= cuts[:, None]).mean(axis=1)
    fpr = (nonmembers[None, :] >= cuts[:, None]).mean(axis=1)
    return float(cuts[np.argmax(tpr - fpr)])
