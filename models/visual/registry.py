"""Visually-aware recommenders by name, built from item features
(`cls(n_users, n_items, config, features=...)`). They are also in the main model registry, as
`input_kind = "images"` targets that only the visual family's cells build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from recsec.models.registry import Registry, register_payload_loader

if TYPE_CHECKING:
    from recsec.models.base import Recommender

VISUAL_MODELS = Registry("visual recommender", group="recsec.models")
register_visual_model = VISUAL_MODELS.register
visual_model_class = VISUAL_MODELS.get
visual_model_names = VISUAL_MODELS.names


def create_visual_model(name: str, n_users: int, features: torch.Tensor | np.ndarray, **params: Any) -> "Recommender":
    """An untrained model over items with these features [n_items, d]; `params` are config fields."""
    cls = visual_model_class(name)
    features = torch.as_tensor(features, dtype=torch.float32)
    return cls(n_users, features.shape[0], cls.Config(**params), features=features)


def visual_model_from_payload(payload: dict) -> "Recommender":
    """Inverse of `model.to_payload()` (plain tensors and primitives: loadable with weights_only)."""
    cls = visual_model_class(payload["model"])
    features = torch.zeros(payload["n_items"], payload["feature_dim"])
    model = cls(payload["n_users"], payload["n_items"], cls.Config(**payload["config"]), features=features)
    model.load_state_dict(payload["state"])
    return model


register_payload_loader("images", visual_model_from_payload)
