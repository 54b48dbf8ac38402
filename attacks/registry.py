"""Attacks by name. Each class declares its `family` and a frozen `Config`."""

from __future__ import annotations

from recsec.attacks.base import Attack
from recsec.models.registry import Registry

ATTACKS = Registry("attack", group="recsec.attacks", base=Attack)
register_attack = ATTACKS.register
attack_class = ATTACKS.get


def attack_names(family: str | None = None) -> list[str]:
    return ATTACKS.names(None if family is None else (lambda cls: cls.family == family))
