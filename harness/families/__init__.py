"""Attack families as plugins of the harness (see `base.Family`). The generic layer asks a
cell's family for everything family-specific; the families live in `attacks/<family>/`."""

from recsec.harness.families.base import (Family, Success, column, configured_attack, configured_defense,
                                          shapes_target, trains_target)
from recsec.harness.families.registry import family_names, family_of_attack, get_family, register_family
from recsec.harness.threat_model import ThreatModel

__all__ = ["Family", "Success", "ThreatModel", "column", "configured_attack", "configured_defense", "family_names",
           "family_of_attack", "get_family", "register_family", "shapes_target", "trains_target"]
