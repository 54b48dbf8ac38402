"""recsec: security and privacy attacks on recommender systems, and defenses, as a benchmark.

The repository keeps `harness/`, `models/`, `attacks/` and `defenses/` at its top; installed (and
imported) they live under this one name: `recsec.harness`, `recsec.models`, `recsec.attacks`,
`recsec.defenses`, so nothing common is claimed in site-packages.
"""

from recsec.harness import __version__

__all__ = ["__version__"]
