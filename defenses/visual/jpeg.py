"""JPEG re-compression (Dziugaite et al., 2016; Das et al., 2017): encoding at a moderate quality
discards the high-frequency detail adversarial perturbations live in. A squeezing baseline:
nothing to train, not differentiable (an adaptive attacker would use BPDA)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from recsec.defenses.visual.base import ImageTransform
from recsec.defenses.visual.registry import register_input_defense


@dataclass(frozen=True)
class JPEGConfig:
    quality: int = 75  # PIL's scale, 1 (worst) .. 95 (best)

    def __post_init__(self):
        if not 1 <= self.quality <= 95:
            raise ValueError(f"jpeg: quality must be in [1, 95], got {self.quality}")


@register_input_defense("jpeg")
class JPEGCompression(ImageTransform):
    Config = JPEGConfig

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        pixels = (images.detach().cpu() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        out = np.empty_like(pixels)
        for i, array in enumerate(pixels):
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="JPEG", quality=self.config.quality)
            buffer.seek(0)
            with Image.open(buffer) as decoded:
                out[i] = np.asarray(decoded.convert("RGB"))
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255).to(images.device)
