"""A test plugin: an attack that always raises, to check one failing cell never stops a grid."""

from dataclasses import dataclass

from attacks.registry import register_attack
from attacks.stealing.base import StealingAttack


@dataclass(frozen=True)
class ExplodeConfig:
    pass


@register_attack("explode")
class Explode(StealingAttack):
    Config = ExplodeConfig

    def run(self, view, oracle, *, seed, device="cpu"):
        raise RuntimeError("boom: this attack always fails")
