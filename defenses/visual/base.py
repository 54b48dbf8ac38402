"""What every input defense is: a configured transform of item images ([n, 3, H, W] in [0, 1]
in, the same shape out) applied before the feature extractor, or a detector that scores images
as adversarial. Trainable ones learn from clean/perturbed pairs in `fit`; the rest ignore it."""

from __future__ import annotations

from typing import ClassVar

import torch

from recsec.models.registry import Configured
from recsec.models.visual.efficientnet_lite import as_float_images


class ImageTransform(Configured):
    kind: ClassVar[str] = "input"
    trainable: ClassVar[bool] = False

    def fit(self, clean: torch.Tensor, perturbed: torch.Tensor, *, seed: int = 0) -> "ImageTransform":
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Transformed images, float in [0, 1] (images outside [0, 1], from the normalized-space
        attack, are clipped first: no real image can hold them)."""
        images = as_float_images(images).clamp(0.0, 1.0)
        if len(images) == 0:
            return images
        return self.transform(images)

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
