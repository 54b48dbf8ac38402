"""The adversarial-image attacks as grid components: `fgsm` and `pgd` in the visual family.

A grid attack is the image attack plus the TAaMR choice of classes: `origin` and `target` ImageNet
classes, or (None) the origin chosen as the least recommended class with at least `min_items`
items and the target as the most recommended one, from the clean lists (`choose_classes`).
The harness (harness/visual.py) runs the protocol and grades it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from attacks.registry import register_attack
from attacks.visual.base import ImageAttack
from attacks.visual.fgsm import FGSM, FGSMConfig
from attacks.visual.pgd import PGD, PGDConfig
from models.registry import Configured


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


class GridImageAttack(Configured):
    family: ClassVar[str] = "visual"
    needs_auxiliary: ClassVar[bool] = False
    fine_tunes_clone: ClassVar[bool] = False
    target_kinds: ClassVar[tuple[str, ...]] = ("images",)
    attack_type: ClassVar[type[ImageAttack]]
    attack_config: ClassVar[type]

    def image_attack(self) -> ImageAttack:
        own = {name: getattr(self.config, name) for name in self.attack_config.__dataclass_fields__}
        return self.attack_type(self.attack_config(**own))


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
