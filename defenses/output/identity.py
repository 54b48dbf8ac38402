"""`none`: serve the target's lists unchanged (the undefended baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.defenses.output.base import OutputDefense
from recsec.defenses.registry import register_defense


@dataclass(frozen=True)
class NoDefenseConfig:
    pass


@register_defense("none")
class NoDefense(OutputDefense):
    Config = NoDefenseConfig

    def __call__(self, lists: np.ndarray, users, context, rng) -> np.ndarray:
        return lists
