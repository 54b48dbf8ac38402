"""Visually-aware recommendation: the image CNN (EfficientNet-Lite0 with packaged ImageNet
weights) and recommenders over its item features (VBPR, its TAaMR variant, AMR).

The recommenders have their own registry (`models.visual.registry`): they are built from item
features, which the main model registry's entries are not.
"""

from recsec.models.visual.efficientnet_lite import (
    FEATURE_DIM,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE_MEAN,
    LITE_STD,
    EfficientNetLite0,
    EfficientNetLiteConfig,
    as_float_images,
    packaged_weights_path,
)
from recsec.models.visual.imagenet_classes import IMAGENET_CLASSES
from recsec.models.visual.registry import (
    create_visual_model,
    register_visual_model,
    visual_model_class,
    visual_model_from_payload,
    visual_model_names,
)
from recsec.models.visual.vbpr import AMR, VBPR, AMRConfig, VBPRConfig  # registers vbpr, amr

__all__ = [
    "AMR",
    "AMRConfig",
    "FEATURE_DIM",
    "IMAGENET_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LITE_MEAN",
    "LITE_STD",
    "EfficientNetLite0",
    "EfficientNetLiteConfig",
    "VBPR",
    "VBPRConfig",
    "as_float_images",
    "create_visual_model",
    "packaged_weights_path",
    "register_visual_model",
    "visual_model_class",
    "visual_model_from_payload",
    "visual_model_names",
]
