"""Input defenses of visually-aware recommenders, placed before the feature extractor: image
purification (a trained denoiser), adversarial-image detection (a contrastive encoder and a
classifier head), and the squeezing baselines JPEG re-compression and median filtering. AMR,
the training-time defense, is a recommender (`models.visual.AMR`).

Grids name them through defenses/visual/registered.py (kind "input").
"""

from recsec.defenses.visual.base import ImageTransform
from recsec.defenses.visual.detection import ContrastiveDetector, DetectorConfig  # registers detect
from recsec.defenses.visual.jpeg import JPEGCompression, JPEGConfig  # registers jpeg
from recsec.defenses.visual.median import MedianConfig, MedianFilter  # registers median
from recsec.defenses.visual.purification import Purifier, PurifierConfig  # registers purify
from recsec.defenses.visual.registry import create_input_defense, input_defense_class, input_defense_names

__all__ = [
    "ContrastiveDetector",
    "DetectorConfig",
    "ImageTransform",
    "JPEGCompression",
    "JPEGConfig",
    "MedianConfig",
    "MedianFilter",
    "Purifier",
    "PurifierConfig",
    "create_input_defense",
    "input_defense_class",
    "input_defense_names",
]
