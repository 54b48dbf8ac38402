"""Grid files: load and validate YAML, expand the matrix into frozen cells with content hashes.

No side effects: nothing here trains, logs or touches Ray. Errors are `GridError`s that name the
file, the key path and what was expected. The jobs live apart: the schema (`grid_schema`), the
checks (`grid_checks`), the expansion (`grid_expand`), a cell (`cell`), `extends` and `--set`
(`grid_compose`); this module puts them together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from pydantic import ValidationError

from recsec.harness.cell import Cell
from recsec.harness.errors import GridError
from recsec.harness.grid_checks import (all_axes, check_axes, check_finite, check_names_and_params, format_validation,
                                        grid_families, list_axes, model_axes, parse_sections, section_owners)
from recsec.harness.grid_compose import apply_overrides, read_grid_file
from recsec.harness.grid_expand import expand
from recsec.harness.grid_schema import (CORE_AXES, Component, DatasetConfig, Grid, SplitConfig, Strict, content_hash,
                                        resolve_training)
from recsec.harness.plugins import load_plugins

__all__ = ["CORE_AXES", "Cell", "Component", "DatasetConfig", "Grid", "SplitConfig", "Strict", "all_axes",
           "content_hash", "expand", "grid_families", "list_axes", "load_grid", "model_axes", "parse_grid", "resolve_training"]


def load_grid(path: Path | str, overrides: Sequence[str] = ()) -> Grid:
    """The grid in `path` (with its `extends` chain), then `overrides` (`key.sub=value`), validated."""
    path = Path(path)
    raw = read_grid_file(path)
    if overrides:
        if not isinstance(raw, dict):
            raise GridError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
        raw = apply_overrides(raw, overrides, str(path))
    return parse_grid(raw, source=str(path))


def parse_grid(raw: Any, source: str = "<grid>") -> Grid:
    load_plugins()
    if not isinstance(raw, dict):
        raise GridError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    check_finite(raw, source, ())
    if "sections" in raw:  # the parsed grid's own field, not a key of the file
        raise GridError(f"{source}: sections: unknown key")
    owners = section_owners()
    given = {key: raw[key] for key in raw if key in owners}
    try:
        grid = Grid.model_validate({key: value for key, value in raw.items() if key not in given})
    except ValidationError as exc:
        raise GridError(format_validation(source, exc)) from None
    grid = grid.model_copy(update={"sections": parse_sections(grid, given, source)})
    check_axes(grid, source)
    check_names_and_params(grid, source)
    return grid
