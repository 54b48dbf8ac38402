"""The heuristic fake-user profiles of the shilling literature, each with the target items added
to every profile: `random` (fillers uniform over the catalogue), `bandwagon` (a share of the
fillers from the most popular items, the rest uniform), `popular` (fillers drawn from the most
popular items only).

Popularity is what the attacker can see: item counts in its known share of the training data.
`bandwagon` follows DL-Attack's baseline code (bandwagon_attack.py): round(share * n) fillers from
the top round(top_share * items) items by popularity, the others uniform over every other item
the known users rated (the other popular ones included). `none` injects nothing: the clean baseline run through
the same retraining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.attacks.poisoning.base import Injection, PoisonAttack, PoisonView, inject_all, profiles_matrix
from recsec.attacks.registry import register_attack
from recsec.harness import streams

FILLERS = streams.purpose("shilling profiles' filler items", 0x9A5)


@dataclass(frozen=True)
class NoSettings:
    pass


@register_attack("no_poison")
class NoPoison(PoisonAttack):
    """Injects nothing: the target retrained on clean data, graded like every attack."""

    Config = NoSettings

    def run(self, view: PoisonView, oracle, *, seed: int, device: str = "cpu") -> Injection:
        return Injection(profiles_matrix([], view.n_items))


def _candidates(view: PoisonView) -> np.ndarray:
    return np.setdiff1d(np.arange(view.n_items), view.target_items)


def _popular_first(view: PoisonView, candidates: np.ndarray) -> np.ndarray:
    """The candidates by known popularity, most popular first (ties by item id); items nobody
    known rated are not popular at all."""
    counts = view.item_popularity()[candidates]
    order = np.argsort(-counts, kind="stable")
    return candidates[order][counts[order] > 0]


@register_attack("random")
class RandomAttack(PoisonAttack):
    Config = NoSettings

    def fillers(self, view: PoisonView, rng: np.random.Generator) -> np.ndarray:
        candidates = _candidates(view)
        return rng.choice(candidates, min(view.budget.filler_items, len(candidates)), replace=False)

    def run(self, view: PoisonView, oracle, *, seed: int, device: str = "cpu") -> Injection:
        rng = FILLERS.rng(seed)
        rows = [np.concatenate([view.target_items, self.fillers(view, rng)]) for _ in range(view.budget.fake_users)]
        return inject_all(oracle, rows, view.n_items)


@dataclass(frozen=True)
class BandwagonConfig:
    popular_share: float = 0.1  # share of each profile's fillers drawn from the popular items
    top_share: float = 0.1  # the popular items: this share of the catalogue, most rated first

    def __post_init__(self):
        for name in ("popular_share", "top_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"bandwagon: {name} must be in [0, 1], got {getattr(self, name)}")


@register_attack("bandwagon")
class BandwagonAttack(RandomAttack):
    Config = BandwagonConfig

    def fillers(self, view: PoisonView, rng: np.random.Generator) -> np.ndarray:
        n = view.budget.filler_items
        rated = _popular_first(view, _candidates(view))
        popular = rated[: round(self.config.top_share * view.n_items)]
        n_popular = min(round(self.config.popular_share * n), len(popular))
        chosen = rng.choice(popular, n_popular, replace=False)
        rest = np.setdiff1d(rated, chosen)  # every other rated item, the other popular ones included
        return np.concatenate([chosen, rng.choice(rest, min(n - n_popular, len(rest)), replace=False)])


@dataclass(frozen=True)
class PopularConfig:
    top_share: float = 0.1  # fillers are drawn from this share of the catalogue, most rated first

    def __post_init__(self):
        if not 0 < self.top_share <= 1:
            raise ValueError(f"popular: top_share must be in (0, 1], got {self.top_share}")


@register_attack("popular")
class PopularAttack(RandomAttack):
    Config = PopularConfig

    def fillers(self, view: PoisonView, rng: np.random.Generator) -> np.ndarray:
        popular = _popular_first(view, _candidates(view))
        pool = popular[: max(view.budget.filler_items, round(self.config.top_share * view.n_items))]
        return rng.choice(pool, min(view.budget.filler_items, len(pool)), replace=False)
