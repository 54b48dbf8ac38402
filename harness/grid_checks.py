"""A parsed grid's checks: every name, parameter, axis value and pairing, before any work starts.

Each problem is one line naming the file, the key path and what was expected; all of a grid's
problems are reported together. The axes beyond the core ones are the grid's families' threat
models' fields (`harness.threat_model`): a value is checked by its field's type.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from recsec import attacks
from recsec import defenses
from recsec import models
from recsec.harness.errors import GridError
from recsec.harness.families import Family, family_names, get_family
from recsec.harness.grid_schema import CORE_AXES, Component, Grid, Training, resolve_training
from recsec.harness.threat_model import check_axis_value


# -- the axes -----------------------------------------------------------------------------------

def axis_readers() -> dict[str, dict[str, FieldInfo]]:
    """Every registered family's threat-model axes: axis -> {family name: its field}."""
    out: dict[str, dict[str, FieldInfo]] = {}
    for name in family_names():
        for axis, info in get_family(name).threat_model.axes().items():
            out.setdefault(axis, {})[name] = info
    return out


def all_axes() -> tuple[str, ...]:
    """Every axis a run may be tagged with, in the order tables show them and cells expand: the
    target, the attacker's models, the attack and the defense, then the other axes as the family
    that reads the most lists them (ties by name), then those the others add."""
    threats = sorted((get_family(name).threat_model for name in family_names()),
                     key=lambda t: (-len(t.axes()), t.__name__))
    model_axes = [a for t in threats for a in t.model_axes()]
    others = [a for t in threats for a in t.axes() if a not in model_axes]
    return tuple(dict.fromkeys(["target", *model_axes, "attack", "defense", *others]))


def model_axes() -> tuple[str, ...]:
    """The axes that name the attacker's own models, over every registered family: a table shows
    such a model as `same` where it is the target's."""
    return tuple(dict.fromkeys(a for name in family_names() for a in get_family(name).threat_model.model_axes()))


def list_axes() -> tuple[str, ...]:
    """The axes that give the length of the lists served to the attacker (`ThreatModel.list_axis`)."""
    return tuple(dict.fromkeys(axis for name in family_names()
                               if (axis := get_family(name).threat_model.list_axis) is not None))


def read_axes(family: Family) -> list[str]:
    """The axes one family's cells read, in table order."""
    own = set(family.threat_model.axes()) | set(CORE_AXES)
    return [axis for axis in all_axes() if axis in own]


def component_axes(families: dict[str, Family]) -> tuple[str, ...]:
    """The axes whose values are components (the core ones, and the grid's families' models)."""
    return CORE_AXES + tuple(dict.fromkeys(a for f in families.values() for a in f.threat_model.model_axes()))


def grid_families(grid: Grid) -> dict[str, Family]:
    """The families of the grid's (known) attacks, matrix and include entries, by name."""
    names = [a.name for a in grid.matrix.attack]
    for entry in grid.include:
        attack = entry.get("attack")
        if isinstance(attack, (str, dict)):
            names.append(attack if isinstance(attack, str) else attack.get("name"))
    return {family: get_family(family) for family in
            dict.fromkeys(attacks.attack_class(n).family for n in names if n in attacks.attack_names())}


# -- sections and axes --------------------------------------------------------------------------

def section_owners() -> dict[str, tuple[str, type]]:
    """Every registered family's grid sections: name -> (family name, pydantic model)."""
    return {name: (family, model) for family in family_names()
            for name, model in get_family(family).threat_model.section_models().items()}


def parse_sections(grid: Grid, given: dict, source: str) -> dict[str, Any]:
    """The sections the grid's families read, validated (absent ones take their defaults); a
    section no family of the grid reads is an error."""
    families, owners = grid_families(grid), section_owners()
    problems, sections = [], {}
    for name in given:
        owner = owners[name][0]
        if owner not in families:
            problems.append(f"{source}: {name}: only {owner} attacks read this section, and the grid runs "
                            f"{', '.join(sorted(families)) or 'no known'} attacks")
    for family in families.values():
        for name, model in family.threat_model.section_models().items():
            try:
                sections[name] = model.model_validate(given.get(name) or {})
            except ValidationError as exc:
                problems.append(format_validation(source, exc, prefix=(name,)))
    _raise(problems)
    return sections


def check_axes(grid: Grid, source: str) -> None:
    """The matrix's keys beyond the core axes, and the axes of include entries, must be read by a
    family of the grid; a matrix axis is a non-empty list of values its type accepts."""
    families, readers = grid_families(grid), axis_readers()
    problems = []
    for axis, values in (grid.matrix.model_extra or {}).items():
        where = f"{source}: matrix.{axis}"
        if axis not in readers:
            problems.append(f"{where}: unknown key; axes: {', '.join(all_axes())}")
        elif families and not set(readers[axis]) & set(families):
            problems.append(_not_read(where, axis, families, readers))
        elif not isinstance(values, list) or not values:
            problems.append(f"{where}: expected a non-empty list of values, got {values!r}")
        else:
            info = _field(axis, families, readers)
            problems += [f"{where}[{i}]: expected {expected}, got {v!r}" for i, v in enumerate(values)
                         if (expected := check_axis_value(info, v)) is not None]
    if families:
        for i, entry in enumerate(grid.include):
            for axis in entry:
                if axis in readers and not set(readers[axis]) & set(families):
                    problems.append(_not_read(f"{source}: include[{i}].{axis}", axis, families, readers))
    _raise(problems)


def _field(axis: str, families: dict[str, Family], readers: dict) -> FieldInfo:
    """The field that checks an axis's values: the first of the grid's families that reads it."""
    return next(readers[axis][name] for name in families if name in readers[axis])


def _not_read(where: str, axis: str, families: dict[str, Family], readers: dict) -> str:
    """An axis the grid's families do not read would run one cell under several hashes."""
    reads = "; ".join(f"{name} reads {', '.join(read_axes(family))}" for name, family in sorted(families.items()))
    return (f"{where}: no attack family of this grid reads this axis: only {', '.join(sorted(readers[axis]))} "
            f"attacks do ({reads})")


# -- names, parameters and pairings -------------------------------------------------------------

def check_names_and_params(grid: Grid, source: str) -> None:
    """Unknown names, parameters and out-of-range values are errors before any work starts."""
    families = grid_families(grid)
    problems = []
    for axis in CORE_AXES:
        for i, comp in enumerate(getattr(grid.matrix, axis)):
            problems += _check_component(f"{source}: matrix.{axis}[{i}]", axis, comp, grid.training)
    for axis, comps in model_axis_values(grid, families).items():
        for i, comp in enumerate(comps):
            problems += _check_component(f"{source}: matrix.{axis}[{i}]", "model", comp, grid.training)
    problems += _check_learnable(grid, families, source)
    problems += _check_pairings(grid, families, source)
    for name, overrides in grid.training.models.items():
        where = f"{source}: training.models.{name}"
        if name not in models.model_names():
            problems.append(f"{where}: unknown model; known: {', '.join(models.model_names())}")
        else:
            problems += _check_config(where, models.model_class(name).Config, overrides)
    for kind in ("include", "exclude"):
        for i, entry in enumerate(getattr(grid, kind)):
            for axis, value in entry.items():
                problems += _check_entry(f"{source}: {kind}[{i}].{axis}", kind, axis, value, grid, families)
    _raise(list(dict.fromkeys(problems)))


def model_axis_values(grid: Grid, families: dict[str, Family]) -> dict[str, list[Component]]:
    """The matrix's values of each model axis of the grid's families (their default if unswept)."""
    extra = grid.matrix.model_extra or {}
    out = {}
    for family in families.values():
        for axis in family.threat_model.model_axes():
            if axis not in out:
                raw = extra.get(axis)
                out[axis] = ([Component.model_validate(v) for v in raw] if isinstance(raw, list)
                             else [family.threat_model.model_fields[axis].default])
    return out


def _check_entry(where: str, kind: str, axis: str, value: Any, grid: Grid, families: dict[str, Family]) -> list[str]:
    readers = axis_readers()
    if axis == "seed":
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{where}: expected an integer, got {value!r}"]
    if axis not in CORE_AXES and axis not in readers:
        return [f"{where}: unknown axis; axes: {', '.join(all_axes() + ('seed',))}"]
    if axis in CORE_AXES or axis in model_axes():
        try:
            comp = Component.model_validate(value)
        except ValidationError:
            return [f"{where}: expected a name or {{name: ..., params...}}, got {value!r}"]
        # An exclude rule given by name alone matches any parameters: check the name only.
        if kind == "exclude" and isinstance(value, str):
            comp = Component(name=comp.name)
        return _check_component(where, axis if axis in CORE_AXES else "model", comp, grid.training)
    info = _field(axis, families, readers) if set(readers[axis]) & set(families) else next(iter(readers[axis].values()))
    expected = check_axis_value(info, value)
    return [] if expected is None else [f"{where}: expected {expected}, got {value!r}"]


def _registries() -> dict:
    return {
        "target": (models.model_names(), models.model_class),
        "model": (models.model_names() + ["same"], models.model_class),
        "attack": (attacks.attack_names(), attacks.attack_class),
        "defense": (defenses.defense_names(), defenses.defense_class),
    }


def _check_component(where: str, axis: str, comp: Component, training: Training) -> list[str]:
    names, lookup = _registries()[axis]
    if comp.name not in names:
        return [f"{where}: unknown {axis} {comp.name!r}; known: {', '.join(names)}"]
    if comp.name == "same":
        return []
    params = resolve_training(training, comp).params if axis in ("target", "model") else comp.params
    return _check_config(where, lookup(comp.name).Config, params)


def _check_learnable(grid: Grid, families: dict[str, Family], source: str) -> list[str]:
    """Attacks that fine-tune the attacker's model by gradient need a model with weights to learn."""
    if not any(attacks.attack_class(a.name).fine_tunes_clone
               for a in grid.matrix.attack if a.name in attacks.attack_names()):
        return []
    problems = []
    for axis, comps in model_axis_values(grid, families).items():
        for i, comp in enumerate(comps):
            names = [t.name for t in grid.matrix.target] if comp.name == "same" else [comp.name]
            for name in names:
                if name in models.model_names() and not models.model_class(name).learnable:
                    problems.append(f"{source}: matrix.{axis}[{i}]: {name!r} has no learnable weights, so it "
                                    f"cannot be the {axis} of an attack that fine-tunes it"
                                    + (f" ({axis} `same` as the target)" if comp.name == "same" else ""))
    return problems


_KIND_WORDS = {"users": "user ids", "sequences": "item sequences", "images": "item images (their features)"}


def _input_kind(model_name: str) -> str:
    return models.model_class(model_name).input_kind


def _check_pairings(grid: Grid, families: dict[str, Family], source: str) -> list[str]:
    """Every attack, attacker's model and defense must fit every target it meets: extraction
    needs sequential targets and surrogates, the stealing attacks need user-id ones, and a
    training-time defense must know how to train the target."""
    m = grid.matrix
    known = lambda axis, comp: comp.name in _registries()[axis][0]  # noqa: E731
    targets = [(i, t) for i, t in enumerate(m.target) if known("target", t)]
    problems = []
    for j, attack in enumerate(m.attack):
        if not known("attack", attack):
            continue
        accepts = attacks.attack_class(attack.name).target_kinds
        for i, target in targets:
            if _input_kind(target.name) not in accepts:
                problems.append(f"{source}: matrix.attack[{j}]: {attack.name} attacks recommenders of "
                                f"{_KIND_WORDS[accepts[0]]}, but matrix.target[{i}] {target.name} scores "
                                f"{_KIND_WORDS[_input_kind(target.name)]}")
    for axis, comps in model_axis_values(grid, families).items():
        for j, comp in enumerate(comps):
            if comp.name == "same" or not known("model", comp):
                continue
            for i, target in targets:
                if _input_kind(comp.name) != _input_kind(target.name):
                    problems.append(f"{source}: matrix.{axis}[{j}]: {comp.name} scores "
                                    f"{_KIND_WORDS[_input_kind(comp.name)]}, but matrix.target[{i}] {target.name} "
                                    f"scores {_KIND_WORDS[_input_kind(target.name)]}")
    for j, defense in enumerate(m.defense):
        if not known("defense", defense):
            continue
        cls = defenses.defense_class(defense.name)
        defended = cls.families  # a defense that only makes sense for some families
        for family in sorted(set(families) - set(defended or families)):
            problems.append(f"{source}: matrix.defense[{j}]: {defense.name} defends against "
                            f"{', '.join(defended)} attacks only, but the grid runs {family} attacks")
        if cls.kind != "training":
            continue
        # `targets` names the models a defense trains; `target_kinds` admits every model of a kind
        trains, kinds = cls.targets, cls.target_kinds
        for i, target in targets:
            if target.name not in trains and _input_kind(target.name) not in kinds:
                what = ", ".join([*trains, *(f"any model of {_KIND_WORDS[k]}" for k in kinds)]) or "no"
                problems.append(f"{source}: matrix.defense[{j}]: {defense.name} trains only "
                                f"{what} targets, not matrix.target[{i}] {target.name}")
    for family in families.values():
        problems += _check_family_defenses(grid, family, source)
        problems += family.check(grid, source)
    return problems


def _check_family_defenses(grid: Grid, family: Family, source: str) -> list[str]:
    """The defenses a family's cells take (`Family.own_defenses_only`, `defense_kinds`)."""
    problems = []
    for j, defense in enumerate(grid.matrix.defense):
        if defense.name == "none" or defense.name not in defenses.defense_names():
            continue
        cls = defenses.defense_class(defense.name)
        if family.own_defenses_only and family.name not in (cls.families or ()):
            own = [n for n in defenses.defense_names() if family.name in (defenses.defense_class(n).families or ())]
            problems.append(f"{source}: matrix.defense[{j}]: {defense.name} does not defend {family.name} attacks; "
                            f"they take none or {', '.join(own)}")
        elif family.defense_kinds is not None and cls.kind not in family.defense_kinds:
            problems.append(f"{source}: matrix.defense[{j}]: {defense.name} is a {cls.kind} defense; {family.name} "
                            f"cells take {' or '.join(family.defense_kinds)} defenses only")
    return problems


def _check_config(where: str, config_cls, params: dict) -> list[str]:
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(params) - fields)
    if unknown:
        return [f"{where}: unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(sorted(fields)) or 'none'}"]
    try:
        config_cls(**params)
    except (TypeError, ValueError) as exc:
        return [f"{where}: {exc}"]
    return []


# -- formatting ---------------------------------------------------------------------------------

def check_finite(value: Any, source: str, loc: tuple) -> None:
    """NaN and infinities (YAML's .nan, .inf) are no setting of anything: refuse them by key."""
    if isinstance(value, float) and not math.isfinite(value):
        raise GridError(f"{source}: {key_path(loc)}: must be a finite number (got {value!r})")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        check_finite(item, source, (*loc, key))


def format_validation(source: str, exc: ValidationError, prefix: tuple = ()) -> str:
    lines = []
    for err in exc.errors():
        path = key_path(prefix + tuple(err["loc"]))
        given = err.get("input")
        shown = "" if isinstance(given, dict) or err["type"] == "missing" else f" (got {given!r})"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {path}: {msg}{shown}")
    return "\n".join(lines)


def key_path(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith("function-"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _raise(problems: list[str]) -> None:
    if problems:
        raise GridError("\n".join(problems))


__all__ = ["all_axes", "list_axes", "model_axes", "axis_readers", "check_axes", "check_finite", "check_names_and_params", "component_axes",
           "format_validation", "grid_families", "parse_sections", "read_axes", "section_owners"]
