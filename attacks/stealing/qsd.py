"""QSD baseline (Yue et al., 2021, "Black-box attacks on sequential recommenders via data-free
model extraction"), adapted to general recommenders as in Zhu et al. (2023): the clone learns
from the known users' queried lists alone (no interactions), with the margin hinge loss for
both the ranking part and the recommended-item part."""

from __future__ import annotations

from dataclasses import dataclass


from recsec.attacks.registry import register_attack
from recsec.attacks.stealing.base import QUERY_ORDER, ListTraining, StealingAttack, StealingResult, learn_lists, query_known_users
from recsec.models.sampling import make_generator


@dataclass(frozen=True)
class QSDConfig(ListTraining):
    ranking_loss: str = "hinge"
    item_loss: str = "hinge"


@register_attack("qsd")
class QSD(StealingAttack):
    Config = QSDConfig

    def run(self, view, oracle, *, seed, device="cpu") -> StealingResult:
        clone = self.new_clone(view, device)
        clone.reset_parameters(make_generator(seed, clone.device))
        rows, lists = query_known_users(view, oracle, QUERY_ORDER.rng(seed))
        learn_lists(clone, view, rows, lists, self.config, seed=seed)
        return StealingResult(clone, queried_rows=rows)
