"""The membership attacks as grid components: `zhang_mlp`, `zhang_kmeans`, `dlmia`, and the
one-feature baseline `difference_norm`.

Each grid attack is one of the library's classifiers plus what the attacker does around it
(`run`: ask the oracle for the target part's lists, build difference vectors, fit, score): how
the difference vectors weight the served list (`weights`), whether the attacker, knowing the
target's output defense, serves its shadow part the same way (`knows_defense`), and which
serving protocol the experiment reproduces (`protocol`: "published", the default, or "deployed"). The harness
(attacks/membership/cells.py) trains the recommenders, serves the lists and grades the scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from recsec.attacks.base import Attack
from recsec.attacks.membership.base import MembershipAttack, MembershipResult, run_attack
from recsec.attacks.membership.baseline import DifferenceNorm, DifferenceNormConfig
from recsec.attacks.membership.dlmia import DLMIA, DLMIAConfig
from recsec.attacks.membership.features import WEIGHTS
from recsec.attacks.membership.parts import MembershipView
from recsec.attacks.membership.recommendations import PROTOCOLS
from recsec.attacks.membership.zhang import ZhangKMeans, ZhangKMeansConfig, ZhangMLP, ZhangMLPConfig
from recsec.attacks.registry import register_attack
from recsec.attacks.membership.cells import SERVED_LISTS


@dataclass(frozen=True)
class AttackerOptions:
    weights: str = "uniform"  # of the served list's items in its centre: "uniform" or "rank"
    knows_defense: bool = False  # serve the shadow part through the target's output defense too
    # Which lists the shadow and target parts are served (attacks.membership.recommendations):
    # "published" as the published code writes them, "deployed" as a recommender in service would.
    protocol: str = "published"

    def check_options(self, name: str) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"{name}: weights must be one of {WEIGHTS}, got {self.weights!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"{name}: protocol must be one of {PROTOCOLS}, got {self.protocol!r}")


class GridMembershipAttack(Attack):
    """A membership attack the harness runs: `classifier()` builds the library's attack."""

    family: ClassVar[str] = "membership"
    # The attacker's shadow recommender (the grid's clone axis) trains as an auxiliary model.
    needs_auxiliary: ClassVar[bool] = True
    target_kinds: ClassVar[tuple[str, ...]] = ("users", "sequences")
    classifier_type: ClassVar[type[MembershipAttack]]
    classifier_config: ClassVar[type]  # the library classifier's own config (a base of Config)

    def classifier(self) -> MembershipAttack:
        own = {name: getattr(self.config, name) for name in self.classifier_config.__dataclass_fields__}
        return self.classifier_type(self.classifier_config(**own))

    def run(self, view: MembershipView, oracle, *, seed: int, device: str = "cpu") -> MembershipResult:
        """Ask the oracle for every target-part user's list (one batch), serve the shadow part the
        same way (through the defense too if the attacker knows it), fit on the shadow part's
        difference vectors and score the target part's."""
        target_lists = oracle.query(np.arange(len(view.target.users)))
        shadow_lists = view.shadow.served(view.defense if self.config.knows_defense else None,
                                          SERVED_LISTS.rng(seed, 1), self.config.protocol)
        weights = self.config.weights
        return run_attack(self.classifier(), view.shadow.features(shadow_lists, weights, view.shadow.labels),
                          view.target.features(target_lists, weights), seed=seed)


@dataclass(frozen=True)
class ZhangMLPAttackConfig(ZhangMLPConfig, AttackerOptions):
    def __post_init__(self):
        ZhangMLPConfig.__post_init__(self)
        self.check_options("zhang_mlp")


@dataclass(frozen=True)
class ZhangKMeansAttackConfig(ZhangKMeansConfig, AttackerOptions):
    def __post_init__(self):
        ZhangKMeansConfig.__post_init__(self)
        self.check_options("zhang_kmeans")


@dataclass(frozen=True)
class DLMIAAttackConfig(DLMIAConfig, AttackerOptions):
    def __post_init__(self):
        DLMIAConfig.__post_init__(self)
        self.check_options("dlmia")


@dataclass(frozen=True)
class DifferenceNormAttackConfig(DifferenceNormConfig, AttackerOptions):
    def __post_init__(self):
        self.check_options("difference_norm")


@register_attack("zhang_mlp")
class ZhangMLPAttack(GridMembershipAttack):
    """Zhang et al. (CCS 2021): an MLP on the shadow part's difference vectors."""

    Config = ZhangMLPAttackConfig
    classifier_type = ZhangMLP
    classifier_config = ZhangMLPConfig


@register_attack("zhang_kmeans")
class ZhangKMeansAttack(GridMembershipAttack):
    """Zhang et al.'s unsupervised variant: two k-means clusters of the target's vectors."""

    Config = ZhangKMeansAttackConfig
    classifier_type = ZhangKMeans
    classifier_config = ZhangKMeansConfig


@register_attack("dlmia")
class DLMIAAttack(GridMembershipAttack):
    """Wang et al. (KDD 2022): debiased by a disentangling VAE and per-vector trust weights."""

    Config = DLMIAAttackConfig
    classifier_type = DLMIA
    classifier_config = DLMIAConfig


@register_attack("difference_norm")
class DifferenceNormAttack(GridMembershipAttack):
    """Baseline: the difference vector's length alone (a short one: member)."""

    Config = DifferenceNormAttackConfig
    classifier_type = DifferenceNorm
    classifier_config = DifferenceNormConfig
