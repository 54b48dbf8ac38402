"""Membership inference against general (user-id based) recommenders: was this user's history
in the target recommender's training data?

The pieces, in the order an experiment uses them:
- `attacks.membership.splits`: the vectorization / shadow / target user partition;
- `recommendations.serve_lists`: what each shadow or target user is served (members: the
  recommender's top-k; non-members: most popular, or folded in), behind an optional defense;
- `features`: item vectors from the vectorization part and each user's difference vector;
- the attacks, fit on the shadow part and scored on the target part: `ZhangMLP`, `ZhangKMeans`
  (Zhang et al., CCS 2021) and `DLMIA` (Wang et al., KDD 2022);
- `run_attack` -> `MembershipResult`, graded by `attacks.membership.metrics.membership_metrics`.
"""

from recsec.attacks.membership.base import MembershipAttack, MembershipResult, PartFeatures, run_attack
from recsec.attacks.membership.dlmia import DLMIA, DLMIAConfig
from recsec.attacks.membership.features import ItemVectors, difference_vectors, factorize_items, part_features
from recsec.attacks.membership.recommendations import ServedLists, serve_lists
from recsec.attacks.membership.zhang import ZhangKMeans, ZhangKMeansConfig, ZhangMLP, ZhangMLPConfig

__all__ = [
    "DLMIA",
    "DLMIAConfig",
    "ItemVectors",
    "MembershipAttack",
    "MembershipResult",
    "PartFeatures",
    "ServedLists",
    "ZhangKMeans",
    "ZhangKMeansConfig",
    "ZhangMLP",
    "ZhangMLPConfig",
    "difference_vectors",
    "factorize_items",
    "part_features",
    "run_attack",
    "serve_lists",
]
