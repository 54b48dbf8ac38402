"""The input defenses as grid components (kind "input", visual family only): `jpeg`, `median`,
`purify` transform item images before the feature extractor, so the recommender is trained on
what they make of the clean images and they are part of the target's identity; `detect` flags
adversarial uploads and is graded by detection accuracy and ROC AUC."""

from __future__ import annotations

from typing import ClassVar

from recsec.defenses.registry import register_defense
from recsec.defenses.visual.detection import ContrastiveDetector, DetectorConfig
from recsec.defenses.visual.jpeg import JPEGCompression, JPEGConfig
from recsec.defenses.visual.median import MedianConfig, MedianFilter
from recsec.defenses.visual.purification import Purifier, PurifierConfig
from recsec.defenses.base import Defense


class GridInputDefense(Defense):
    kind: ClassVar[str] = "input"
    families: ClassVar[tuple[str, ...]] = ("visual",)
    implementation: ClassVar[type]
    transforms: ClassVar[bool] = True  # False: a detector, which leaves images as they are

    def build(self):
        return self.implementation(self.config)


@register_defense("jpeg")
class JPEGDefense(GridInputDefense):
    Config, implementation = JPEGConfig, JPEGCompression


@register_defense("median")
class MedianDefense(GridInputDefense):
    Config, implementation = MedianConfig, MedianFilter


@register_defense("purify")
class PurifyDefense(GridInputDefense):
    Config, implementation = PurifierConfig, Purifier


@register_defense("detect")
class DetectDefense(GridInputDefense):
    Config, implementation = DetectorConfig, ContrastiveDetector
    transforms = False
