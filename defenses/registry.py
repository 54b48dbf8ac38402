"""Defenses by name. Each class declares its `kind` (output, training, input) and a frozen `Config`."""

from __future__ import annotations

from recsec.models.registry import Registry

DEFENSES = Registry("defense", group="recsec.defenses")
register_defense = DEFENSES.register
defense_class = DEFENSES.get
create_defense = DEFENSES.create


def defense_names() -> list[str]:
    return DEFENSES.names()
