"""Attack families as plugins of the harness (see `base.Family`). The generic layer asks a
cell's family for everything family-specific; recsec's own families live here, one module each."""

from recsec.harness.families.base import CORE_AXES, Axis, Family, Success, column
from recsec.harness.families.registry import family_names, family_of_attack, get_family, register_family

__all__ = ["CORE_AXES", "Axis", "Family", "Success", "column", "family_names", "family_of_attack", "get_family",
           "register_family"]
