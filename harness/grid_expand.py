"""A checked grid's cells: the matrix's product times the seeds, minus `exclude`, plus `include`.

Each cell is plain frozen data (`harness.cell.Cell`): its family's threat model holds the axis
values the family reads (an axis it does not read keeps no value in it), and the family says what
the cell's target and auxiliary model depend on, once, here.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from recsec import attacks
from recsec.harness.cell import Cell
from recsec.harness.families import Family, get_family
from recsec.harness.grid_checks import all_axes, component_axes, grid_families
from recsec.harness.grid_schema import CORE_AXES, Component, Grid, content_hash, resolve_training


def expand(grid: Grid) -> list[Cell]:
    """The matrix's cartesian product times the seeds, minus `exclude`, plus `include`.

    An `exclude` rule drops matrix cells matching all its axes (seed included). An `include`
    entry adds cells: axes it does not name take each axis's first value, and it runs for its
    `seed` if given, else for every seed; included cells are not subject to `exclude`.
    """
    families = grid_families(grid)
    components = component_axes(families)
    axis_values = _axis_values(grid, families)
    cells, seen = [], set()

    def add(combo: dict, seed: int) -> None:
        cell = make_cell(grid, combo, seed)
        key = content_hash(cell.normalized())
        if key not in seen:
            seen.add(key)
            cells.append(cell)

    for values in itertools.product(*axis_values.values()):
        combo = dict(zip(axis_values, values))
        for seed in grid.seeds:
            if not any(_matches({**combo, "seed": seed}, rule, components) for rule in grid.exclude):
                add(combo, seed)
    for entry in grid.include:
        combo = {axis: values[0] for axis, values in axis_values.items()}
        combo.update({axis: Component.model_validate(value) if axis in components else value
                      for axis, value in entry.items() if axis != "seed"})
        for seed in [entry["seed"]] if "seed" in entry else grid.seeds:
            add(combo, seed)
    return cells


def _axis_values(grid: Grid, families: dict[str, Family]) -> dict[str, list]:
    """Each axis the grid's cells take a value of, with its values, in table order: the core
    axes, then the axes of the grid's families (their default where the matrix does not sweep)."""
    swept = {axis: getattr(grid.matrix, axis) for axis in CORE_AXES} | dict(grid.matrix.model_extra or {})
    values = {}
    for axis in all_axes():
        readers = [f.threat_model.model_fields[axis] for f in families.values() if axis in f.threat_model.axes()]
        if axis in swept:
            values[axis] = swept[axis]
        elif readers:
            values[axis] = [readers[0].default]
    for axis, given in values.items():
        if axis in component_axes(families):
            values[axis] = [Component.model_validate(v) for v in given]
    return values


def make_cell(grid: Grid, combo: dict[str, Any], seed: int) -> Cell:
    family = get_family(attacks.attack_class(combo["attack"].name).family)
    threat_model = family.threat_model
    target = resolve_training(grid.training, combo["target"])
    # An axis the family does not read is not part of its cells, so that a grid mixing families
    # runs each of this family's cells once.
    threat = {axis: combo[axis] for axis in threat_model.axes() if axis in combo}
    for axis in threat_model.model_axes():
        threat[axis] = target if threat[axis].name == "same" else resolve_training(grid.training, threat[axis])
    threat.update({name: grid.sections[name] for name in threat_model.sections})
    # The values were checked with the grid (harness.grid_checks); constructing keeps them as the
    # grid wrote them (an integer share stays one), as the cells' hashes always had them.
    cell = Cell(grid=grid.name, family=family.name, dataset=grid.dataset, split=grid.split, target=target,
                attack=combo["attack"], defense=combo["defense"], threat=threat_model.model_construct(**threat),
                seed=seed, metric_ks=tuple(grid.metrics.k))
    auxiliary = family.needs_auxiliary(cell)
    return dataclasses.replace(
        cell, target_identity=family.target_identity(cell),
        auxiliary_identity=family.auxiliary_identity(cell) if auxiliary else None,
        auxiliary_dataset=family.auxiliary_dataset(cell) if auxiliary else None)


def _matches(combo: dict, rule: dict, components: tuple[str, ...]) -> bool:
    for axis, wanted in rule.items():
        have = combo.get(axis)
        if axis in components:
            if isinstance(wanted, str):
                if have.name != wanted:
                    return False
            elif have != Component.model_validate(wanted):
                return False
        elif have != wanted:
            return False
    return True
