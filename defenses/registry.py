"""Defenses by name. Each class declares its `kind` (output, training, input) and a frozen `Config`."""

from __future__ import annotations

from typing import Any

from models.registry import Registry

DEFENSES = Registry("defense")
register_defense = DEFENSES.register
defense_class = DEFENSES.get


def defense_names() -> list[str]:
    return DEFENSES.names()


def create_defense(name: str, **params: Any):
    cls = defense_class(name)
    return cls(cls.Config(**params))
