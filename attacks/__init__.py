"""Attacks, one subpackage per family, registered by name.

An attack receives an `AttackerView` and an `Oracle`, never the target model or its data; the
harness computes every metric from what the attack returns, so no attack grades itself.
"""

from recsec.attacks.registry import attack_class, attack_names, register_attack

from recsec.attacks.extraction import dfme  # noqa: F401,E402  (registration side effect)
from recsec.attacks.stealing import pta, ptd, ptq, qsd  # noqa: F401,E402
from recsec.attacks.membership import registered  # noqa: F401,E402
from recsec.attacks.visual import registered as _visual  # noqa: F401,E402
from recsec.attacks.poisoning import dlattack, heuristic, revadv  # noqa: F401,E402

__all__ = ["attack_class", "attack_names", "register_attack"]
