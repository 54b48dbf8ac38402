"""Recommenders with one interface (`models.base.Recommender`) and a registry by name.

Every model module registers itself with `@register_model`; importing this package imports them
all explicitly (no probing), so `create_model("bpr", ...)` always finds them.
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

from recsec.models import bpr, itemcf, lightgcn, lmf, ncf, popularity  # noqa: F401,E402  (registration side effect)
from recsec.models import sequential  # noqa: F401,E402  (registers sasrec, bert4rec, narm, gru4rec, stamp)
from recsec.models import visual  # noqa: F401,E402  (registers vbpr, amr: built from item features)

__all__ = ["ModelSpec", "model_from_payload", "create_model", "load_model", "model_class", "model_names", "register_model"]
