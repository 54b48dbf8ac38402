"""`random` and `reverse`: the simple output defenses of the extraction literature (Yue et al.,
2021). They keep each served list's items and change only their order, so set-based utility
(recall, hit ratio) is untouched while rank-based utility (NDCG) and what a stealer learns from
the order both suffer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.defenses.output.base import OutputDefense
from recsec.defenses.registry import register_defense


@dataclass(frozen=True)
class ReorderConfig:
    pass


@register_defense("random")
class RandomOrder(OutputDefense):
    """Serve each list's items in a uniformly random order."""

    Config = ReorderConfig

    def __call__(self, lists: np.ndarray, users, context, rng: np.random.Generator) -> np.ndarray:
        return rng.permuted(lists, axis=1)


@register_defense("reverse")
class ReverseOrder(OutputDefense):
    """Serve each list worst-first."""

    Config = ReorderConfig

    def __call__(self, lists: np.ndarray, users, context, rng) -> np.ndarray:
        return lists[:, ::-1].copy()
