"""Grid files: load and validate YAML, expand the matrix into frozen cells with content hashes.

No side effects: nothing here trains, logs or touches Ray. Errors are `GridError`s that name the
file, the key path and what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recsec import attacks
from recsec import defenses
from recsec import models
from recsec.harness import __version__
from recsec.harness.data import dataset_names
from recsec.harness.errors import GridError
from recsec.harness.families import Axis, Family, family_names, get_family
from recsec.harness.grid_compose import apply_overrides, read_grid_file
from recsec.harness.plugins import load_plugins
from recsec.attacks.threat import KNOWN_UNITS, Knowledge

# The axes a grid's `matrix` may sweep, in the order cells are expanded and shown.
AXES = ("target", "clone", "attack", "defense", "known_share", "known_unit", "list_length",
        "query_budget", "aux_share", "item_overlap")
COMPONENT_AXES = ("target", "clone", "attack", "defense")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(Strict):
    """A named model/attack/defense with parameters. YAML: `bpr` or `{name: bpr, dim: 32}`."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value):
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "params" not in value and "name" in value:
            return {"name": value["name"], "params": {k: v for k, v in value.items() if k != "name"}}
        return value

    def label(self) -> str:
        if not self.params:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({inner})"


class DatasetConfig(Strict):
    name: str = "synthetic"
    params: dict[str, Any] = Field(default_factory=dict)
    min_user_interactions: int = Field(5, ge=1)
    min_item_interactions: int = Field(5, ge=1)

    @field_validator("name")
    @classmethod
    def _known(cls, name):
        if name not in dataset_names():
            raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(dataset_names())}")
        return name

    def key(self) -> str:
        """Identifies the dataset as loaded (name, parameters, k-core)."""
        return content_hash(self.model_dump())


class SplitConfig(Strict):
    target_share: float = Field(0.5, gt=0, le=1, description="share of users in the target half")
    holdout: float = Field(0.2, ge=0, lt=1, description="share of each target user's items held out")


class Resources(Strict):
    num_cpus: float = Field(1, gt=0)
    num_gpus: float = Field(0, ge=0)

    @field_validator("num_gpus")
    @classmethod
    def _whole_gpus_above_one(cls, value: float) -> float:
        # Ray shares a GPU between tasks below 1, but a request above 1 must be whole GPUs.
        if value > 1 and not float(value).is_integer():
            raise ValueError("a request above 1 GPU must be a whole number")
        return value


class StageResources(Strict):
    train: Resources = Resources()
    attack: Resources = Resources()


class Training(Strict):
    """`defaults` apply to every model that has the field; `models.<name>` override per model."""

    defaults: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Metrics(Strict):
    k: list[int] = Field(default_factory=lambda: [10, 20, 50, 100], min_length=1)

    @field_validator("k")
    @classmethod
    def _positive(cls, ks):
        if any(k < 1 for k in ks):
            raise ValueError("every k must be >= 1")
        return sorted(set(ks))


class Matrix(Strict):
    # Besides these, an axis a family adds (Family.own_axes): kept as extra keys, checked by
    # `_check_family_axes` once the grid's families are known.
    model_config = ConfigDict(extra="allow", frozen=True)

    target: list[Component] = Field(min_length=1)
    clone: list[Component] = Field(default_factory=lambda: [Component(name="same")], min_length=1)
    attack: list[Component] = Field(min_length=1)
    defense: list[Component] = Field(default_factory=lambda: [Component(name="none")], min_length=1)
    known_share: list[float] = Field(default_factory=lambda: [0.1], min_length=1)
    known_unit: list[Literal["users", "interactions"]] = Field(default_factory=lambda: ["users"], min_length=1)
    list_length: list[int] = Field(default_factory=lambda: [50], min_length=1)
    query_budget: list[Optional[int]] = Field(default_factory=lambda: [None], min_length=1)
    aux_share: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    item_overlap: list[float] = Field(default_factory=lambda: [1.0], min_length=1)

    @field_validator("known_share", "aux_share", "item_overlap")
    @classmethod
    def _shares(cls, values, info):
        if any(not 0 < v <= 1 for v in values):
            raise ValueError(f"every {info.field_name} must be in (0, 1]")
        return values

    @field_validator("list_length")
    @classmethod
    def _lengths(cls, values):
        if any(v < 1 for v in values):
            raise ValueError("every list_length must be >= 1")
        return values

    @field_validator("query_budget")
    @classmethod
    def _budgets(cls, values):
        if any(v is not None and v < 0 for v in values):
            raise ValueError("every query_budget must be >= 0 or null (unlimited)")
        return values


class Grid(Strict):
    # It names the MLflow experiment and the driver's log files: a safe file name, no path.
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$", max_length=200, description="MLflow experiment name")
    description: str = ""
    dataset: DatasetConfig = DatasetConfig()
    split: SplitConfig = SplitConfig()
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    matrix: Matrix
    include: list[dict[str, Any]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    training: Training = Training()
    resources: StageResources = StageResources()
    metrics: Metrics = Metrics()
    # Families' own top-level sections (e.g. `membership`), validated by their family's model.
    sections: dict[str, Any] = Field(default_factory=dict, exclude=True)


@dataclasses.dataclass(frozen=True, eq=False)
class Cell:
    """One complete, frozen experiment: everything a worker needs, nothing it must look up."""

    grid: str
    dataset: DatasetConfig
    split: SplitConfig
    target: Component  # params resolved with the grid's training defaults
    clone: Component  # resolved: never "same"
    attack: Component
    defense: Component
    knowledge: Knowledge
    seed: int
    metric_ks: tuple[int, ...]
    # The grid sections the cell's family reads (name -> its validated model), e.g. `membership`.
    sections: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The values of the axes only the cell's family reads (Family.own_axes), e.g. `fake_share`.
    family_axes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def axes(self) -> dict[str, Any]:
        """Axis values as shown in tables and tags (components by label)."""
        return {
            "target": self.target.label(),
            "clone": self.clone.label(),
            "attack": self.attack.label(),
            "defense": self.defense.label(),
            "known_share": self.knowledge.known_share,
            "known_unit": self.knowledge.known_unit,
            "list_length": self.knowledge.list_length,
            "query_budget": "all" if self.knowledge.query_budget is None else self.knowledge.query_budget,
            "aux_share": self.knowledge.aux_share,
            "item_overlap": self.knowledge.item_overlap,
            **self.family_axes,
            "seed": self.seed,
        }

    def normalized(self) -> dict:
        return {
            "dataset": self.dataset.model_dump(),
            "split": self.split.model_dump(),
            "target": self.target.model_dump(),
            "clone": self.clone.model_dump(),
            "attack": self.attack.model_dump(),
            "defense": self.defense.model_dump(),
            "knowledge": dataclasses.asdict(self.knowledge),
            "seed": self.seed,
            "metric_ks": list(self.metric_ks),
            **{name: section.model_dump() for name, section in self.sections.items()},
            # Absent when empty, so the cells of families without axes of their own keep their hashes.
            **({"family_axes": dict(sorted(self.family_axes.items()))} if self.family_axes else {}),
        }

    def target_normalized(self) -> dict:
        """What the target depends on (its family says)."""
        return self.family_plugin.target_identity(self)

    @property
    def sequential(self) -> bool:
        """Whether the target scores item sequences (the extraction protocol) or user ids."""
        return models.model_class(self.target.name).input_kind == "sequences"

    @property
    def training_defense(self) -> bool:
        return defenses.defense_class(self.defense.name).kind == "training"

    @property
    def defense_shapes_target(self) -> bool:
        """A training defense trains the target; an input defense (visual) transforms the item
        images the target's features come from. Either way each defense has its own target."""
        return defenses.defense_class(self.defense.name).kind in ("training", "input")

    def auxiliary_normalized(self) -> dict:
        """What the attacker's auxiliary model depends on (its family says; never the target)."""
        return self.family_plugin.auxiliary_identity(self)

    def attack_instance(self, **init):
        """The cell's attack, configured; `init` adds constructor arguments (a clone's spec)."""
        cls = attacks.attack_class(self.attack.name)
        return cls(cls.Config(**self.attack.params), **init)

    def defense_instance(self):
        """The cell's defense, configured; None for `none`."""
        return None if self.defense.name == "none" else defenses.create_defense(self.defense.name,
                                                                                **self.defense.params)

    @property
    def family(self) -> str:
        """The name of the attack's family."""
        return attacks.attack_class(self.attack.name).family

    @property
    def family_plugin(self) -> Family:
        return get_family(self.family)

    @property
    def needs_auxiliary(self) -> bool:
        return self.family_plugin.needs_auxiliary(self)

    @property
    def auxiliary_dataset(self) -> DatasetConfig:
        """The dataset the attacker's auxiliary model trains on."""
        return self.family_plugin.auxiliary_dataset(self)

    def auxiliary_hash(self, dataset_digest: str) -> str:
        return content_hash({"auxiliary": self.auxiliary_normalized(), "data": dataset_digest, "code": __version__})

    def cell_hash(self, dataset_digest: str) -> str:
        return content_hash({"cell": self.normalized(), "data": dataset_digest, "code": __version__})

    def target_hash(self, dataset_digest: str) -> str:
        return content_hash({"target": self.target_normalized(), "data": dataset_digest, "code": __version__})


def content_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- loading ------------------------------------------------------------------------------------

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
    _check_finite(raw, source, ())
    section_models = _section_models()
    if "sections" in raw:  # the parsed grid's own field, not a key of the file
        raise GridError(f"{source}: sections: unknown key")
    given = {key: raw[key] for key in raw if key in section_models}
    try:
        grid = Grid.model_validate({key: value for key, value in raw.items() if key not in given})
    except ValidationError as exc:
        raise GridError(_format_validation(source, exc)) from None
    grid = grid.model_copy(update={"sections": _parse_sections(grid, given, section_models, source)})
    _check_family_axes(grid, source)
    _check_axes(grid, source)
    _check_names_and_params(grid, source)
    return grid


def family_axes() -> dict[str, tuple[str, Axis]]:
    """Every registered family's own axes: name -> (family name, Axis)."""
    return {axis: (name, spec) for name in family_names() for axis, spec in get_family(name).own_axes.items()}


def all_axes() -> tuple[str, ...]:
    """The shared axes, then each registered family's own, in family order: what runs are tagged with."""
    return AXES + tuple(family_axes())


def _check_family_axes(grid: Grid, source: str) -> None:
    """The matrix's keys beyond the shared axes must be axes of the grid's families, each a
    non-empty list of values their family accepts."""
    owners, families = family_axes(), grid_families(grid)
    problems = []
    for axis, values in (grid.matrix.model_extra or {}).items():
        where = f"{source}: matrix.{axis}"
        if axis not in owners:
            known = ", ".join(AXES + tuple(owners))
            problems.append(f"{where}: unknown key; axes: {known}")
        elif families and owners[axis][0] not in families:
            problems.append(f"{where}: only {owners[axis][0]} attacks read this axis, and the grid runs "
                            f"{', '.join(sorted(families))} attacks")
        elif not isinstance(values, list) or not values:
            problems.append(f"{where}: expected a non-empty list of values, got {values!r}")
        else:
            problems += [f"{where}[{i}]: expected {owners[axis][1].expected}, got {v!r}"
                         for i, v in enumerate(values) if not owners[axis][1].valid(v)]
    if problems:
        raise GridError("\n".join(problems))


def _grid_axis_values(grid: Grid) -> dict[str, list]:
    """Each axis the grid's cells take a value of, with its values: the shared axes, then the
    own axes of the grid's families (their default where the matrix does not sweep them)."""
    values = {axis: getattr(grid.matrix, axis) for axis in AXES}
    extra = grid.matrix.model_extra or {}
    for family in grid_families(grid).values():
        for axis, spec in family.own_axes.items():
            values[axis] = extra.get(axis, [spec.default])
    return values


def _section_models() -> dict[str, tuple[str, type]]:
    """Every registered family's sections: name -> (family name, pydantic model)."""
    return {name: (family, model) for family in family_names()
            for name, model in get_family(family).sections.items()}


def _parse_sections(grid: Grid, given: dict, section_models: dict, source: str) -> dict[str, Any]:
    """The sections the grid's families read, validated (absent ones take their defaults); a
    section no family of the grid reads is an error."""
    families = grid_families(grid)
    problems, sections = [], {}
    for name, value in given.items():
        owner = section_models[name][0]
        if owner not in families:
            problems.append(f"{source}: {name}: only {owner} attacks read this section, and the grid runs "
                            f"{', '.join(sorted(families)) or 'no known'} attacks")
    for family in families.values():
        for name, model in family.sections.items():
            try:
                sections[name] = model.model_validate(given.get(name) or {})
            except ValidationError as exc:
                problems.append(_format_validation(source, exc, prefix=(name,)))
    if problems:
        raise GridError("\n".join(problems))
    return sections


def _check_axes(grid: Grid, source: str) -> None:
    """A grid that sets an axis none of its families reads would run the same cell under several
    hashes: refuse it, naming the axis and what the families read."""
    families = grid_families(grid)
    if not families:
        return  # unknown attacks: reported by the name checks
    read = {axis for family in families.values() for axis in family.axes}
    named = [(f"matrix.{axis}", axis) for axis in sorted(set(grid.matrix.model_fields_set) & set(AXES),
                                                         key=AXES.index)]
    named += [(f"include[{i}].{axis}", axis) for i, entry in enumerate(grid.include) for axis in entry]
    for where, axis in named:
        owner = family_axes().get(axis)
        if owner is not None and owner[0] not in families:
            raise GridError(f"{source}: {where}: only {owner[0]} attacks read this axis, and the grid runs "
                            f"{', '.join(sorted(families))} attacks")
        if axis in AXES and axis not in read:
            reads = "; ".join(f"{name} reads {', '.join(a for a in AXES if a in family.axes)}"
                              for name, family in sorted(families.items()))
            raise GridError(f"{source}: {where}: no attack family of this grid reads this axis ({reads})")


def _check_finite(value: Any, source: str, loc: tuple) -> None:
    """NaN and infinities (YAML's .nan, .inf) are no setting of anything: refuse them by key."""
    if isinstance(value, float) and not math.isfinite(value):
        raise GridError(f"{source}: {_key_path(loc)}: must be a finite number (got {value!r})")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _check_finite(item, source, (*loc, key))


def _format_validation(source: str, exc: ValidationError, prefix: tuple = ()) -> str:
    lines = []
    for err in exc.errors():
        path = _key_path(prefix + tuple(err["loc"]))
        given = err.get("input")
        shown = "" if isinstance(given, dict) or err["type"] == "missing" else f" (got {given!r})"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {path}: {msg}{shown}")
    return "\n".join(lines)


def _key_path(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after[_from_shorthand(), Component]",) or str(part).startswith("function-"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _registries() -> dict:
    return {
        "target": (models.model_names(), models.model_class),
        "clone": (models.model_names() + ["same"], models.model_class),
        "attack": (attacks.attack_names(), attacks.attack_class),
        "defense": (defenses.defense_names(), defenses.defense_class),
    }


def _check_component(where: str, axis: str, comp: Component, training: Training) -> list[str]:
    names, lookup = _registries()[axis]
    if comp.name not in names:
        return [f"{where}: unknown {axis} {comp.name!r}; known: {', '.join(names)}"]
    if comp.name == "same":
        return []
    params = resolve_training(training, comp).params if axis in ("target", "clone") else comp.params
    return _check_config(where, lookup(comp.name).Config, params)


def _check_scalar(where: str, axis: str, value: Any) -> list[str]:
    share = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1  # noqa: E731
    valid = {
        "known_share": share,
        "aux_share": share,
        "item_overlap": share,
        "known_unit": lambda v: v in KNOWN_UNITS,
        "list_length": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "query_budget": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        "seed": lambda v: isinstance(v, int) and not isinstance(v, bool),
    }
    expected = {"known_share": "a number in (0, 1]", "aux_share": "a number in (0, 1]",
                "item_overlap": "a number in (0, 1]", "known_unit": f"one of {', '.join(KNOWN_UNITS)}",
                "list_length": "an integer >= 1",
                "query_budget": "an integer >= 0 or null", "seed": "an integer"}
    return [] if valid[axis](value) else [f"{where}: expected {expected[axis]}, got {value!r}"]


def _check_clones(grid: Grid, source: str) -> list[str]:
    """Attacks that fine-tune their clone by gradient need a clone with weights to learn."""
    if not any(attacks.attack_class(a.name).fine_tunes_clone
               for a in grid.matrix.attack if a.name in attacks.attack_names()):
        return []
    problems = []
    for i, comp in enumerate(grid.matrix.clone):
        names = [t.name for t in grid.matrix.target] if comp.name == "same" else [comp.name]
        for name in names:
            if name in models.model_names() and not models.model_class(name).learnable:
                problems.append(f"{source}: matrix.clone[{i}]: {name!r} has no learnable weights, so it "
                                f"cannot be the clone of an attack that fine-tunes it" + (" (clone `same` as the target)" if comp.name == "same" else ""))
    return problems


_KIND_WORDS = {"users": "user ids", "sequences": "item sequences", "images": "item images (their features)"}


def _input_kind(model_name: str) -> str:
    return models.model_class(model_name).input_kind


def _check_pairings(grid: Grid, source: str) -> list[str]:
    """Every attack, clone and defense must fit every target it meets: extraction needs sequential
    targets and surrogates, the stealing attacks need user-id ones, and a training-time defense
    must know how to train the target."""
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
                wants = accepts[0]
                problems.append(f"{source}: matrix.attack[{j}]: {attack.name} attacks recommenders of "
                                f"{_KIND_WORDS[wants]}, but matrix.target[{i}] {target.name} scores "
                                f"{_KIND_WORDS[_input_kind(target.name)]}")
    for j, clone in enumerate(m.clone):
        if clone.name == "same" or not known("clone", clone):
            continue
        for i, target in targets:
            if _input_kind(clone.name) != _input_kind(target.name):
                problems.append(f"{source}: matrix.clone[{j}]: {clone.name} scores {_KIND_WORDS[_input_kind(clone.name)]}, "
                                f"but matrix.target[{i}] {target.name} scores {_KIND_WORDS[_input_kind(target.name)]}")
    families = grid_families(grid)
    for j, defense in enumerate(m.defense):
        if not known("defense", defense):
            continue
        cls = defenses.defense_class(defense.name)
        defended = cls.families  # a defense that only makes sense for some families
        for family in sorted(set(families) - set(defended or families)):
            problems.append(f"{source}: matrix.defense[{j}]: {defense.name} defends against "
                            f"{', '.join(defended)} attacks only, but the grid runs {family} attacks")
        if cls.kind == "output" and defense.name != "none":
            problems += _check_list_lengths(f"{source}: matrix.defense[{j}]", defense, m.list_length)
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
        problems += family.check(grid, source)
    return problems


def grid_families(grid: Grid) -> dict[str, Family]:
    """The families of the grid's (known) attacks, matrix and include entries, by name."""
    names = [a.name for a in grid.matrix.attack]
    for entry in grid.include:
        attack = entry.get("attack")
        if isinstance(attack, (str, dict)):
            names.append(attack if isinstance(attack, str) else attack.get("name"))
    out = {}
    for name in names:
        if name in attacks.attack_names():
            family = attacks.attack_class(name).family
            out[family] = get_family(family)
    return out


def _check_names_and_params(grid: Grid, source: str) -> None:
    """Unknown names, parameters and out-of-range values are errors before any work starts."""
    problems = []
    for axis in COMPONENT_AXES:
        for i, comp in enumerate(getattr(grid.matrix, axis)):
            problems += _check_component(f"{source}: matrix.{axis}[{i}]", axis, comp, grid.training)
    problems += _check_clones(grid, source)
    problems += _check_pairings(grid, source)
    for name, overrides in grid.training.models.items():
        where = f"{source}: training.models.{name}"
        if name not in models.model_names():
            problems.append(f"{where}: unknown model; known: {', '.join(models.model_names())}")
        else:
            problems += _check_config(where, models.model_class(name).Config, overrides)
    owners = family_axes()
    for kind in ("include", "exclude"):
        for i, entry in enumerate(getattr(grid, kind)):
            for axis, value in entry.items():
                where = f"{source}: {kind}[{i}].{axis}"
                if axis in owners:
                    if not owners[axis][1].valid(value):
                        problems.append(f"{where}: expected {owners[axis][1].expected}, got {value!r}")
                elif axis not in AXES + ("seed",):
                    problems.append(f"{where}: unknown axis; axes: {', '.join(all_axes() + ('seed',))}")
                elif axis in COMPONENT_AXES:
                    try:
                        comp = Component.model_validate(value)
                    except ValidationError:
                        problems.append(f"{where}: expected a name or {{name: ..., params...}}, got {value!r}")
                        continue
                    # An exclude rule given by name alone matches any parameters: check the name only.
                    if kind == "exclude" and isinstance(value, str):
                        comp = Component(name=comp.name)
                    problems += _check_component(where, axis, comp, grid.training)
                else:
                    problems += _check_scalar(where, axis, value)
    if problems:
        raise GridError("\n".join(problems))


def _check_list_lengths(where: str, defense: Component, lengths: list[int]) -> list[str]:
    """An output defense must be able to serve every list length of the grid (popular_mix cannot
    replace 25 items of a 10-item list)."""
    try:
        instance = defenses.create_defense(defense.name, **defense.params)
    except (TypeError, ValueError):
        return []  # a bad parameter: reported by the component check
    for k in sorted(set(lengths)):
        try:
            instance.check_list_length(k)
        except ValueError as exc:
            return [f"{where}: {exc} (matrix.list_length)"]
    return []


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


def resolve_training(training: Training, comp: Component) -> Component:
    """A model component with the grid's training defaults and per-model overrides filled in."""
    fields = {f.name for f in dataclasses.fields(models.model_class(comp.name).Config)}
    params = {k: v for k, v in training.defaults.items() if k in fields}
    params.update(training.models.get(comp.name, {}))
    params.update(comp.params)
    return Component(name=comp.name, params=params)


# -- expansion ----------------------------------------------------------------------------------

def expand(grid: Grid) -> list[Cell]:
    """The matrix's cartesian product times the seeds, minus `exclude`, plus `include`.

    An `exclude` rule drops matrix cells matching all its axes (seed included). An `include`
    entry adds cells: axes it does not name take each axis's first value, and it runs for its
    `seed` if given, else for every seed; included cells are not subject to `exclude`.
    """
    axis_values = _grid_axis_values(grid)
    cells, seen = [], set()

    def add(combo: dict, seed: int) -> None:
        cell = _make_cell(grid, combo, seed)
        key = content_hash(cell.normalized())
        if key not in seen:
            seen.add(key)
            cells.append(cell)

    for values in itertools.product(*axis_values.values()):
        combo = dict(zip(axis_values, values))
        for seed in grid.seeds:
            if not any(_matches({**combo, "seed": seed}, rule) for rule in grid.exclude):
                add(combo, seed)
    for entry in grid.include:
        combo = {axis: values[0] for axis, values in axis_values.items()}
        combo.update(_coerce_entry(entry))
        for seed in [entry["seed"]] if "seed" in entry else grid.seeds:
            add(combo, seed)
    return cells


def _make_cell(grid: Grid, combo: dict, seed: int) -> Cell:
    family = get_family(attacks.attack_class(combo["attack"].name).family)
    # An axis the family does not read keeps its default, so that a grid mixing families runs
    # each of this family's cells once.
    own = {axis: value for axis, value in combo.items() if axis in family.own_axes}
    combo = {axis: value if axis in family.axes else _AXIS_DEFAULTS[axis] for axis, value in combo.items()
             if axis in AXES}
    target = resolve_training(grid.training, combo["target"])
    clone = target if combo["clone"].name == "same" else resolve_training(grid.training, combo["clone"])
    return Cell(
        grid=grid.name,
        dataset=grid.dataset,
        split=grid.split,
        target=target,
        clone=clone,
        attack=combo["attack"],
        defense=combo["defense"],
        knowledge=Knowledge(known_share=combo["known_share"], known_unit=combo["known_unit"], list_length=combo["list_length"],
                            query_budget=combo["query_budget"], aux_share=combo["aux_share"],
                            item_overlap=combo["item_overlap"]),
        seed=seed,
        metric_ks=tuple(grid.metrics.k),
        sections={name: grid.sections[name] for name in family.sections},
        family_axes=own,
    )


_AXIS_DEFAULTS = {name: field.default_factory()[0] for name, field in Matrix.model_fields.items()
                  if field.default_factory is not None}


def _coerce_entry(entry: dict) -> dict:
    out = {}
    for axis, value in entry.items():
        if axis == "seed":
            continue
        out[axis] = Component.model_validate(value) if axis in COMPONENT_AXES else value
    return out


def _matches(combo: dict, rule: dict) -> bool:
    for axis, wanted in rule.items():
        have = combo.get(axis)
        if axis in COMPONENT_AXES:
            if isinstance(wanted, str):
                if have.name != wanted:
                    return False
            elif have != Component.model_validate(wanted):
                return False
        elif have != wanted:
            return False
    return True
