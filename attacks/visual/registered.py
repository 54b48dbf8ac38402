"""The adversarial-image attacks as grid components: `fgsm` and `pgd` in the visual family.

A grid attack is the image attack plus the TAaMR choice of classes: `origin` and `target` ImageNet
classes, or (None) the origin chosen as the least recommended class with at least `min_items`
items and the target as the most recommended one, from the clean lists (`choose_classes`).
Each runs TAaMR through the oracle (`run`); the harness
(attacks/visual/cells.py) serves the platform and grades the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np
import torch

from recsec.attacks.base import Attack
from recsec.attacks.registry import register_attack
from recsec.attacks.visual.base import ImageAttack
from recsec.attacks.visual.fgsm import FGSM, FGSMConfig
from recsec.attacks.visual.pgd import PGD, PGDConfig
from recsec.attacks.visual.selection import choose_classes, class_hit_ratios
from recsec.attacks.visual.taamr import CatalogueView, UploadResult


@dataclass(frozen=True)
class ClassChoice:
    origin: Optional[int] = None  # ImageNet class whose items are attacked; None: lowest clean CHR
    target: Optional[int] = None  # class they are pushed toward; None: highest clean CHR
    min_items: int = 5  # an automatically chosen origin class has at least this many items

    def check_choice(self, name: str) -> None:
        for field in ("origin", "target"):
            value = getattr(self, field)
            if value is not None and not 0 <= value < 1000:
                raise ValueError(f"{name}: {field} must be an ImageNet class id in 0..999, got {value}")
        if self.min_items < 1:
            raise ValueError(f"{name}: min_items must be >= 1, got {self.min_items}")


class GridImageAttack(Attack):
    family: ClassVar[str] = "visual"
    target_kinds: ClassVar[tuple[str, ...]] = ("images",)
    attack_type: ClassVar[type[ImageAttack]]
    attack_config: ClassVar[type]

    def image_attack(self) -> ImageAttack:
        own = {name: getattr(self.config, name) for name in self.attack_config.__dataclass_fields__}
        return self.attack_type(self.attack_config(**own))

    def run(self, view: CatalogueView, oracle, *, seed: int, device: str = "cpu") -> UploadResult:
        """TAaMR through the oracle: watch the users' lists, choose the classes from them, perturb
        the origin class's images toward the target class, upload them, watch the lists again."""
        clean_lists = oracle.query(view.users)
        ratios = class_hit_ratios(clean_lists, view.item_classes, 1000, oracle.k)
        origin, target = choose_classes(ratios, view.item_classes, min_items=self.config.min_items,
                                        origin=self.config.origin, target=self.config.target)
        items = np.flatnonzero(view.item_classes == origin)
        adversarial = self.image_attack().perturb(view.cnn, view.images[torch.from_numpy(items)], target, seed=seed)
        oracle.upload(items, adversarial)
        return UploadResult(int(origin), int(target), items, adversarial, clean_lists, oracle.query(view.users))


@dataclass(frozen=True)
class FGSMAttackConfig(FGSMConfig, ClassChoice):
    def __post_init__(self):
        FGSMConfig.__post_init__(self)
        self.check_choice("fgsm")


@dataclass(frozen=True)
class PGDAttackConfig(PGDConfig, ClassChoice):
    def __post_init__(self):
        PGDConfig.__post_init__(self)
        self.check_choice("pgd")


@register_attack("fgsm")
class FGSMAttack(GridImageAttack):
    """Targeted FGSM on the origin class's item images (TAaMR)."""

    Config = FGSMAttackConfig
    attack_type = FGSM
    attack_config = FGSMConfig


@register_attack("pgd")
class PGDAttack(GridImageAttack):
    """Targeted PGD on the origin class's item images (TAaMR)."""

    Config = PGDAttackConfig
    attack_type = PGD
    attack_config = PGDConfig
