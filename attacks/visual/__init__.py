"""Targeted adversarial item images against visually-aware recommenders (TAaMR): FGSM and PGD on
the CNN that gives the items' classes and features, origin/target class selection, and the
protocol that re-ranks users with the attacked items' new features.

`create_visual_attack("pgd", eps=4)` builds one; grids name them through attacks/visual/registered.py.
"""

from recsec.attacks.visual.base import SPACES, ImageAttack
from recsec.attacks.visual.fgsm import FGSM, FGSMConfig  # registers fgsm
from recsec.attacks.visual.pgd import PGD, PGDConfig  # registers pgd
from recsec.attacks.visual.registry import create_visual_attack, visual_attack_class, visual_attack_names
from recsec.attacks.visual.selection import choose_classes
from recsec.attacks.visual.taamr import TAaMROutcome, run_taamr

__all__ = [
    "FGSM",
    "FGSMConfig",
    "ImageAttack",
    "PGD",
    "PGDConfig",
    "SPACES",
    "TAaMROutcome",
    "choose_classes",
    "create_visual_attack",
    "run_taamr",
    "visual_attack_class",
    "visual_attack_names",
]
