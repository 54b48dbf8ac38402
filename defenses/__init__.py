"""Defenses, registered by name. Output defenses transform the lists an oracle serves; training
defenses change how the target is trained (or, against poisoning, what it trains on)."""

from recsec.defenses.registry import create_defense, defense_class, defense_names, register_defense

from recsec.defenses.output import identity, popular_mix, popularity_randomization, reorder  # noqa: F401,E402  (registration side effect)
from recsec.defenses.extraction import gro  # noqa: F401,E402
from recsec.defenses.poisoning import apr, detection, vat  # noqa: F401,E402
from recsec.defenses.visual import registered as _visual  # noqa: F401,E402

__all__ = ["create_defense", "defense_class", "defense_names", "register_defense"]
