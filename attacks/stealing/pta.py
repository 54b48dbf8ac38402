"""PTA, PTAQ and their Pre variants (Zhu et al. 2023): partial target data plus the attacker's
auxiliary data, used through a model of the clone's architecture trained on the auxiliary users.

- PTA: the clone's item vectors are fused with the auxiliary ones by attention (fusion.py), then
  trained like PTD. PTAQ: PTA, then PTQ's fine-tuning on queried lists (Algorithm 1).
- PTA-Pre / PTAQ-Pre: the ablation that initializes the clone's item tables with the auxiliary
  ones instead of fusing them, then trains like PTD (and fine-tunes, for PTAQ-Pre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsec.attacks.registry import register_attack
from recsec.attacks.stealing.base import (QUERY_ORDER, CloneTraining, ListTraining, StealingAttack, StealingResult, learn_lists,
                                         query_known_users)
from recsec.attacks.stealing.fusion import FusedItemClone
from recsec.models.sampling import make_generator


@dataclass(frozen=True)
class PTAConfig(CloneTraining):
    pass


@dataclass(frozen=True)
class PTAQConfig(CloneTraining, ListTraining):
    pass


class _AuxiliaryStealing(StealingAttack):
    needs_auxiliary = True
    fuse: bool  # attention fusion (PTA) or initialization (Pre)
    query: bool  # fine-tune on queried lists afterwards

    def run(self, view, oracle, *, seed, device="cpu") -> StealingResult:
        clone = self.new_clone(view, device)
        auxiliary = self.auxiliary_tables(view)
        if self.fuse:
            clone = FusedItemClone(clone, auxiliary)
            clone.reset_parameters(make_generator(seed, clone.device))
        else:
            clone.reset_parameters(make_generator(seed, clone.device))
            clone.load_item_tables(auxiliary)
        clone = self.train_on_known(clone, view, seed, reset=False)
        rows = np.empty(0, dtype=np.int64)
        if self.query:
            rows, lists = query_known_users(view, oracle, QUERY_ORDER.rng(seed))
            learn_lists(clone, view, rows, lists, self.config, seed=seed)
        return StealingResult(clone, queried_rows=rows)


@register_attack("pta")
class PTA(_AuxiliaryStealing):
    Config, fuse, query, fine_tunes_clone = PTAConfig, True, False, True


@register_attack("ptaq")
class PTAQ(_AuxiliaryStealing):
    Config, fuse, query = PTAQConfig, True, True


@register_attack("pta_pre")
class PTAPre(_AuxiliaryStealing):
    Config, fuse, query = PTAConfig, False, False


@register_attack("ptaq_pre")
class PTAQPre(_AuxiliaryStealing):
    Config, fuse, query = PTAQConfig, False, True
