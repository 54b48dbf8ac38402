"""Unsupervised fake-user detection before training: the defender scores every user of the
training data it receives (real and injected alike, unlabelled) and drops the most suspect.

`pca_select` is PCA-select-users (Mehta & Nejdl, "Unsupervised strategies for shilling
detection and robust collaborative filtering", UMUAI 2009): with users as the variables and
items as the observations, z-score each user's column, take the top `components` principal
components, and score each user by the sum of its squared loadings on them. Fake users, made
alike and of little real structure, load weakly: the `drop_share` of users with the lowest
scores is dropped. The paper drops the expected number of attackers; a defender does not know
it, so the share is a fixed setting here (leak-free: no label is ever seen).

`degsim` is the DegSim feature of Chirita et al. ("Preventing shilling attacks in online
recommender systems", WIDM 2005): a user's mean cosine similarity to its `neighbours` most
similar users. Profiles made by one recipe resemble each other more than real users do: the
`drop_share` of users with the highest DegSim is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from recsec.defenses.registry import register_defense
from recsec.defenses.base import Defense

class UserFilter(Defense):
    """A detector: which rows (users) of a training matrix to drop."""

    kind: ClassVar[str] = "training"
    families: ClassVar[tuple[str, ...]] = ("poisoning",)
    target_kinds: ClassVar[tuple[str, ...]] = ("users",)  # it filters the data any user-id target trains on
    filters_users: ClassVar[bool] = True

    def flag(self, matrix: sp.csr_matrix) -> np.ndarray:
        """A boolean mask over the rows: True for the users dropped."""
        raise NotImplementedError


def lowest(scores: np.ndarray, share: float) -> np.ndarray:
    """The mask of the round(share * n) lowest scores (ties by row order)."""
    mask = np.zeros(len(scores), dtype=bool)
    mask[np.argsort(scores, kind="stable")[: round(share * len(scores))]] = True
    return mask


@dataclass(frozen=True)
class PCASelectConfig:
    drop_share: float = 0.05  # share of the users dropped
    components: int = 3  # principal components read (the paper's 3)

    def __post_init__(self):
        if not 0 <= self.drop_share < 1:
            raise ValueError(f"pca_select: drop_share must be in [0, 1), got {self.drop_share}")
        if self.components < 1:
            raise ValueError(f"pca_select: components must be >= 1, got {self.components}")


@register_defense("pca_select")
class PCASelect(UserFilter):
    Config = PCASelectConfig

    def loadings(self, matrix: sp.csr_matrix) -> np.ndarray:
        """Each user's sum of squared loadings on the top principal components."""
        columns = matrix.T.toarray().astype(np.float64)  # items x users: users are the variables
        std = columns.std(axis=0)
        z = (columns - columns.mean(axis=0)) / np.where(std > 0, std, 1.0)
        k = min(self.config.components, min(z.shape) - 1)
        # The principal axes in user space are the right singular vectors of the z-scored data.
        _, _, vt = np.linalg.svd(z, full_matrices=False) if min(z.shape) <= 2000 else _truncated_svd(z, k)
        return (vt[:k] ** 2).sum(axis=0)

    def flag(self, matrix: sp.csr_matrix) -> np.ndarray:
        return lowest(self.loadings(matrix), self.config.drop_share)


@dataclass(frozen=True)
class DegSimConfig:
    drop_share: float = 0.05  # share of the users dropped
    neighbours: int = 10  # k of the k nearest neighbours

    def __post_init__(self):
        if not 0 <= self.drop_share < 1:
            raise ValueError(f"degsim: drop_share must be in [0, 1), got {self.drop_share}")
        if self.neighbours < 1:
            raise ValueError(f"degsim: neighbours must be >= 1, got {self.neighbours}")


@register_defense("degsim")
class DegSim(UserFilter):
    Config = DegSimConfig

    def degree_of_similarity(self, matrix: sp.csr_matrix, block: int = 2048) -> np.ndarray:
        """Each user's mean cosine similarity to its k most similar other users."""
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        unit = sp.diags(1 / np.where(norms > 0, norms, 1)) @ matrix
        k = min(self.config.neighbours, matrix.shape[0] - 1)
        out = np.zeros(matrix.shape[0])
        for start in range(0, matrix.shape[0], block):  # a block of rows at a time: n x n never whole
            sims = (unit[start:start + block] @ unit.T).toarray()
            rows = np.arange(sims.shape[0])
            sims[rows, start + rows] = -np.inf  # not its own neighbour
            out[start:start + block] = np.sort(np.partition(sims, -k, axis=1)[:, -k:], axis=1).mean(axis=1)
        return out

    def flag(self, matrix: sp.csr_matrix) -> np.ndarray:
        return lowest(-self.degree_of_similarity(matrix), self.config.drop_share)


def _truncated_svd(z: np.ndarray, k: int):
    from scipy.sparse.linalg import svds
    u, s, vt = svds(z, k=k)
    order = np.argsort(-s)
    return u[:, order], s[order], vt[order]
