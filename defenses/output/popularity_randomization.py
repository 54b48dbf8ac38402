"""Popularity randomization (Zhang et al., CCS 2021), a defense against membership inference.

A served list is replaced by items drawn uniformly at random, without replacement, from the
`pool` most popular items the user has not interacted with. The published defense treats
non-members only: their most-popular list is what sets them apart from members, and the
recommender knows who its members are. `scope="all"` treats every user, which hides members
too, at the cost of every member's list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.defenses.output.base import OutputDefense
from recsec.defenses.registry import register_defense

SCOPES = ("nonmembers", "all")


@dataclass(frozen=True)
class PopularityRandomizationConfig:
    pool: int = 800
    scope: str = "nonmembers"

    def __post_init__(self):
        if self.pool < 1:
            raise ValueError(f"popularity_randomization: pool must be >= 1, got {self.pool}")
        if self.scope not in SCOPES:
            raise ValueError(f"popularity_randomization: scope must be one of {SCOPES}, got {self.scope!r}")


@register_defense("popularity_randomization")
class PopularityRandomization(OutputDefense):
    Config = PopularityRandomizationConfig
    # It needs to know who the members are, which only membership cells' serving contexts say.
    families = ("membership",)

    def __call__(self, lists: np.ndarray, users: np.ndarray, context, rng: np.random.Generator) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if self.config.scope == "all":
            treat = np.ones(len(users), dtype=bool)
        else:
            if context.is_member is None:
                raise ValueError("popularity_randomization with scope='nonmembers' needs a serving context "
                                 "that knows the members (is_member): a membership experiment's")
            treat = ~np.asarray(context.is_member)[users]
        served = lists.copy()
        if treat.any():
            served[treat] = self.draw(users[treat], lists.shape[1], context, rng)
        return served

    def draw(self, users: np.ndarray, k: int, context, rng: np.random.Generator) -> np.ndarray:
        """k distinct items per user from the pool minus their history, in random order."""
        pool = np.argsort(-np.asarray(context.item_popularity), kind="stable")[: self.config.pool]
        seen = context.history[users][:, pool].toarray() > 0  # [n, pool]
        available = (~seen).sum(axis=1)
        if (available < k).any():
            raise ValueError(f"popularity_randomization: a pool of {self.config.pool} leaves user "
                             f"{users[np.argmin(available)]} only {available.min()} unseen items for lists of {k}")
        # Random keys, +inf for seen items: the k smallest are a uniform draw from the unseen ones.
        keys = rng.random(seen.shape)
        keys[seen] = np.inf
        chosen = np.argpartition(keys, k - 1, axis=1)[:, :k]
        return pool[chosen]
