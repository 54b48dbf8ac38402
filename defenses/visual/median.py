"""Median filtering (Xu et al., 2018, feature squeezing): each pixel of each channel becomes the
median of its k x k neighbourhood (reflected at the borders), which removes isolated
perturbations and keeps edges. Nothing to train."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recsec.defenses.visual.base import ImageTransform
from recsec.defenses.visual.registry import register_input_defense


@dataclass(frozen=True)
class MedianConfig:
    kernel: int = 3  # odd window side

    def __post_init__(self):
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"median: kernel must be an odd number >= 1, got {self.kernel}")


@register_input_defense("median")
class MedianFilter(ImageTransform):
    Config = MedianConfig

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        k = self.config.kernel
        if k == 1:
            return images.clone()
        n, c, h, w = images.shape
        padded = F.pad(images, (k // 2,) * 4, mode="reflect")
        windows = F.unfold(padded, k)  # [n, c * k * k, h * w]
        return windows.view(n, c, k * k, h * w).median(dim=2).values.view(n, c, h, w)
