"""Defenses, registered by name. Output defenses transform the lists an oracle serves; training
defenses change how the target is trained (or, against poisoning, what it trains on)."""

from recsec.defenses.registry import create_defense, defense_class, defense_names, register_defense

__all__ = ["create_defense", "defense_class", "defense_names", "register_defense"]
