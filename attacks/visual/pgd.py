"""Targeted PGD (Madry et al., 2018) with L-infinity projection, as TAaMR runs it: a uniform random
start in the eps ball, then `steps` signed-gradient steps of `step_size` (default eps / 6, the
TAaMR code's), each projected back into the budget (see base.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recsec.attacks.visual.base import ImageAttack, check_common, target_loss_gradient
from recsec.attacks.visual.registry import register_visual_attack


@dataclass(frozen=True)
class PGDConfig:
    eps: float = 8.0  # L-infinity radius, pixel units out of 255
    steps: int = 10
    step_size: float | None = None  # pixel units out of 255; None: eps / 6
    random_start: bool = True
    space: str = "pixel"  # or "normalized": the TAaMR code's unclipped normalized tensor
    batch_size: int = 16

    def __post_init__(self):
        check_common("pgd", self.eps, self.space, self.batch_size)
        if self.steps < 1:
            raise ValueError(f"pgd: steps must be >= 1, got {self.steps}")
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"pgd: step_size must be > 0 or None, got {self.step_size}")


@register_visual_attack("pgd")
class PGD(ImageAttack):
    Config = PGDConfig

    def search(self, forward, z0, target, lo, hi, radius, generator):
        cfg = self.config
        step = (cfg.step_size if cfg.step_size is not None else cfg.eps / 6) / 255.0
        z = z0
        if cfg.random_start:
            noise = torch.rand(z0.shape, generator=generator, device=z0.device) * (2 * radius) - radius
            z = torch.maximum(torch.minimum(z0 + noise, hi), lo)
        for _ in range(cfg.steps):
            z = z - step * target_loss_gradient(forward, z, target).sign()
            z = torch.maximum(torch.minimum(z, hi), lo)
        return z
