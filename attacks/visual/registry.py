"""Image attacks by name, as a library builds them (`create_visual_attack("pgd", eps=4)`). The
grid-facing `fgsm`/`pgd` of the main attack registry (attacks/visual/registered.py) wrap them
with the TAaMR choice of classes."""

from __future__ import annotations

from recsec.models.registry import Registry

VISUAL_ATTACKS = Registry("visual attack")
register_visual_attack = VISUAL_ATTACKS.register
visual_attack_class = VISUAL_ATTACKS.get
create_visual_attack = VISUAL_ATTACKS.create
visual_attack_names = VISUAL_ATTACKS.names
