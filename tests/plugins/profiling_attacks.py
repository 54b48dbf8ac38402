"""The test family's attacks (see profiling_family): each observes some users' top-K lists
through the oracle and ranks the catalogue by how popular it guesses each item is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from recsec.attacks.base import Attack
from recsec.attacks.registry import register_attack


@dataclass(frozen=True)
class ProfileConfig:
    batch: int = 256  # users per oracle query


class PopularityProfiler(Attack):
    family: ClassVar[str] = "profiling"
    Config: ClassVar[type] = ProfileConfig

    def observed_lists(self, view, oracle) -> np.ndarray:
        """The lists of the known users, as many as the budget allows."""
        users = view.known_users if oracle.budget is None else view.known_users[:oracle.budget]
        parts = [oracle.query(users[i:i + self.config.batch]) for i in range(0, len(users), self.config.batch)]
        return np.concatenate(parts) if parts else np.empty((0, oracle.k), dtype=np.int64)


@register_attack("list_tally")
class ListTally(PopularityProfiler):
    """Counts how often each item is served, a top slot weighing more (1/log2(rank+2))."""

    def run(self, view, oracle, *, seed: int, device: str = "cpu") -> np.ndarray:
        lists = self.observed_lists(view, oracle)
        weights = 1 / np.log2(np.arange(lists.shape[1]) + 2)
        score = np.bincount(lists.ravel(), weights=np.tile(weights, len(lists)), minlength=view.n_items)
        return np.argsort(-score, kind="stable")


@dataclass(frozen=True)
class BlindGuessConfig(ProfileConfig):
    salt: int = 0  # another salt, another random ranking: two guessers that differ only by chance


@register_attack("blind_guess")
class BlindGuess(PopularityProfiler):
    """The baseline: a random ranking, no query made."""

    Config: ClassVar[type] = BlindGuessConfig

    def run(self, view, oracle, *, seed: int, device: str = "cpu") -> np.ndarray:
        return np.random.default_rng([seed, self.config.salt] if self.config.salt else seed).permutation(view.n_items)
