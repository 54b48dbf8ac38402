"""Input defenses by name (image transforms and detectors placed before the feature extractor), as
a library builds them. The main defense registry's `jpeg`, `median`, `purify`, `detect`
(defenses/visual/registered.py, kind "input") wrap them for grids."""

from __future__ import annotations

from recsec.models.registry import Registry

INPUT_DEFENSES = Registry("input defense")
register_input_defense = INPUT_DEFENSES.register
input_defense_class = INPUT_DEFENSES.get
create_input_defense = INPUT_DEFENSES.create
input_defense_names = INPUT_DEFENSES.names
