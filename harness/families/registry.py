"""The registered attack families, by name. A family registers itself (`register_family`) when its
module is imported: the modules of the `recsec.families` entry points (recsec's own five, and any
installed package's) on first lookup, and those a script names in `$RECSEC_PLUGINS`."""

from __future__ import annotations

from recsec import attacks
from recsec.harness.errors import RecsecError
from recsec.harness.families.base import Family
from recsec.models.registry import load_entry_points

GROUP = "recsec.families"
_families: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Make `family` known under `family.name` (its attacks' `family` attribute)."""
    if family.name in _families and type(_families[family.name]) is not type(family):
        raise ValueError(f"family {family.name!r} is already registered by {type(_families[family.name]).__name__}")
    _families[family.name] = family
    return family


def family_names() -> list[str]:
    load_entry_points(GROUP)
    return sorted(_families)


def get_family(name: str) -> Family:
    load_entry_points(GROUP)
    try:
        return _families[name]
    except KeyError:
        raise RecsecError(f"no attack family {name!r} is registered; known: {', '.join(sorted(_families))}") from None


def family_of_attack(attack_name: str) -> Family:
    """The family an attack belongs to (its class's `family` attribute)."""
    return get_family(attacks.attack_class(attack_name).family)
