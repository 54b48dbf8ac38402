"""Popular-item mixing (Zhu et al. 2023, section on defenses).

For each served list, `n` items at random positions are replaced by items drawn at random from the
`pool` most popular items, skipping items already in the list or in the user's history. The
lists' remaining items keep their positions, so the defense trades a known, tunable share of
each list's utility for noise in what a stealer learns from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.defenses.output.base import OutputDefense
from recsec.defenses.registry import register_defense


@dataclass(frozen=True)
class PopularMixConfig:
    n: int = 10
    pool: int = 100

    def __post_init__(self):
        if self.n < 0:
            raise ValueError(f"popular_mix: n must be >= 0, got {self.n}")
        if self.pool < 1:
            raise ValueError(f"popular_mix: pool must be >= 1, got {self.pool}")


@register_defense("popular_mix")
class PopularMix(OutputDefense):
    Config = PopularMixConfig

    def check_list_length(self, k: int) -> None:
        if self.config.n > k:
            raise ValueError(f"popular_mix: n={self.config.n} replaces more items than a list of {k} has")

    def __call__(self, lists: np.ndarray, users: np.ndarray, context, rng: np.random.Generator) -> np.ndarray:
        n_replace = min(self.config.n, lists.shape[1])
        if n_replace == 0:
            return lists
        pool = np.argsort(-context.item_popularity, kind="stable")[: self.config.pool]
        served = lists.copy()
        for row, user in enumerate(users):
            # Candidates: pool items neither in this list nor in the user's history.
            candidates = np.setdiff1d(pool, np.concatenate([lists[row], context.seen(user)]), assume_unique=False)
            take = min(n_replace, len(candidates))
            positions = rng.choice(lists.shape[1], size=take, replace=False)
            served[row, positions] = rng.choice(candidates, size=take, replace=False)
        return served
