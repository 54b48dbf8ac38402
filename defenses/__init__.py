"""Defenses, registered by name. Output defenses transform the lists an oracle serves."""

from defenses.registry import create_defense, defense_class, defense_names, register_defense

from defenses.output import identity, popular_mix, reorder  # noqa: F401,E402  (registration side effect)

__all__ = ["create_defense", "defense_class", "defense_names", "register_defense"]
