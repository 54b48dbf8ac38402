"""Attacks, one subpackage per family, registered by name.

An attack receives an `AttackerView` and an `Oracle`, never the target model or its data; the
harness computes every metric from what the attack returns, so no attack grades itself.
"""

from recsec.attacks.registry import attack_class, attack_names, register_attack

__all__ = ["attack_class", "attack_names", "register_attack"]
