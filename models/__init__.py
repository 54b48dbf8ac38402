"""Recommenders with one interface (`models.base.Recommender`) and a registry by name.

Every model module registers itself with `@register_model`; the registry imports the modules of
the `recsec.models` entry points on first lookup, so `create_model("bpr", ...)` always finds them.
"""

from recsec.models.registry import (
    ModelSpec,
    create_model,
    load_model,
    model_class,
    model_from_payload,
    model_names,
    register_model,
)

__all__ = ["ModelSpec", "model_from_payload", "create_model", "load_model", "model_class", "model_names", "register_model"]
