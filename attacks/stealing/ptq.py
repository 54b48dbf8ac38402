"""PTQ (Zhu et al. 2023): PTD, then fine-tuning on the known users' queried top-K lists.

Loss defaults follow the paper: BPR for the ranking part, hinge for the recommended-item part.
Deviation the paper leaves open: fine-tuning uses the list losses only (the interaction loss of
the PTD stage is not kept as a regularizer); each list item gets `negatives` samples from
outside the list.
"""

from __future__ import annotations

from dataclasses import dataclass


from recsec.attacks.registry import register_attack
from recsec.attacks.stealing.base import (QUERY_ORDER, CloneTraining, ListTraining, StealingAttack, StealingResult, learn_lists,
                                         query_known_users)


@dataclass(frozen=True)
class PTQConfig(CloneTraining, ListTraining):
    pass


@register_attack("ptq")
class PTQ(StealingAttack):
    Config = PTQConfig

    def run(self, view, oracle, *, seed, device="cpu") -> StealingResult:
        clone = self.pretrained_clone(view, seed, device)
        rows, lists = query_known_users(view, oracle, QUERY_ORDER.rng(seed))
        learn_lists(clone, view, rows, lists, self.config, seed=seed)
        return StealingResult(clone, queried_rows=rows)
