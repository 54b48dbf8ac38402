"""Adversarial image attacks by name: a registry of their own until the harness runs visual cells.

The main attack registry feeds grid validation and the task dispatcher, which have no visual
family yet; a name registered there would pass validation and fail at run time.
"""

from __future__ import annotations

from models.registry import Registry

VISUAL_ATTACKS = Registry("visual attack")
register_visual_attack = VISUAL_ATTACKS.register
visual_attack_class = VISUAL_ATTACKS.get


def visual_attack_names() -> list[str]:
    return VISUAL_ATTACKS.names()


def create_visual_attack(name: str, **params):
    cls = visual_attack_class(name)
    return cls(cls.Config(**params))
