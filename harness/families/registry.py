"""The registered attack families, by name. recsec's own five register on first lookup; a plugin
(`$RECSEC_PLUGINS`) registers its own with `register_family`."""

from __future__ import annotations

import importlib
import threading

from recsec import attacks
from recsec.harness.errors import RecsecError
from recsec.harness.families.base import Family

BUILTIN = ("recsec.attacks.stealing.family", "recsec.attacks.extraction.family", "recsec.attacks.membership.family",
           "recsec.attacks.visual.family", "recsec.attacks.poisoning.family")
_families: dict[str, Family] = {}
_builtins_loaded = False
_loading = threading.RLock()  # a served target's actor opens sessions from several threads


def register_family(family: Family) -> Family:
    """Make `family` known under `family.name` (its attacks' `family` attribute)."""
    if family.name in _families and type(_families[family.name]) is not type(family):
        raise ValueError(f"family {family.name!r} is already registered by {type(_families[family.name]).__name__}")
    _families[family.name] = family
    return family


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _loading:
        if not _builtins_loaded:
            for module in BUILTIN:
                importlib.import_module(module)
            _builtins_loaded = True


def family_names() -> list[str]:
    _load_builtins()
    return sorted(_families)


def get_family(name: str) -> Family:
    _load_builtins()
    try:
        return _families[name]
    except KeyError:
        raise RecsecError(f"no attack family {name!r} is registered; known: {', '.join(sorted(_families))}") from None


def family_of_attack(attack_name: str) -> Family:
    """The family an attack belongs to (its class's `family` attribute)."""
    return get_family(attacks.attack_class(attack_name).family)
