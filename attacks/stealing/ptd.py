"""PTD (Zhu et al. 2023): a clone trained on the partial target data alone, with BPR.

No queries: the clone is the clone architecture's own training on the known users'
interactions. This is the lower bound the query- and auxiliary-data attacks improve on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.attacks.registry import register_attack
from recsec.attacks.stealing.base import CloneTraining, StealingAttack, StealingResult


@dataclass(frozen=True)
class PTDConfig(CloneTraining):
    pass


@register_attack("ptd")
class PTD(StealingAttack):
    Config = PTDConfig
    fine_tunes_clone = False  # the clone's own fit only: a most-popular clone is a valid baseline

    def run(self, view, oracle, *, seed, device="cpu") -> StealingResult:
        clone = self.pretrained_clone(view, seed, device)
        return StealingResult(clone, queried_rows=np.empty(0, dtype=np.int64))
