"""Targeted FGSM (Goodfellow et al., 2015), as TAaMR runs it: one signed-gradient step of size
eps against the target class's cross-entropy, projected back into the budget (see base.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recsec.attacks.visual.base import ImageAttack, check_common, target_loss_gradient
from recsec.attacks.visual.registry import register_visual_attack


@dataclass(frozen=True)
class FGSMConfig:
    eps: float = 8.0  # L-infinity radius, pixel units out of 255
    space: str = "pixel"  # or "normalized": the TAaMR code's unclipped normalized tensor
    batch_size: int = 16

    def __post_init__(self):
        check_common("fgsm", self.eps, self.space, self.batch_size)


@register_visual_attack("fgsm")
class FGSM(ImageAttack):
    Config = FGSMConfig

    def search(self, forward, z0, target, lo, hi, radius, generator):
        step = radius * target_loss_gradient(forward, z0, target).sign()
        return torch.maximum(torch.minimum(z0 - step, hi), lo)
