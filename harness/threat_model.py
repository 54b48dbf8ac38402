"""A family's threat model as one typed class: what its attacker knows and may do.

Each field of a family's `ThreatModel` is a matrix axis its cells read: the field's type, default
and constraints are the axis's, so the grid checks a swept value by the same rule the cell holds
it to. A field named in `sections` is not swept: it is a top-level section of the grid file (a
pydantic model), shared by all the grid's cells of that family. A field typed `Component` names a
model of the registry (the attacker's own model): the grid's training defaults apply to it and
`same` stands for the cell's target.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, ClassVar, Literal, Optional

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from recsec.harness.grid_schema import Component, Strict

Share = Annotated[float, Field(gt=0, le=1)]  # a share of something the attacker may hold: (0, 1]
Length = Annotated[int, Field(ge=1)]
Budget = Optional[Annotated[int, Field(ge=0)]]  # None: unlimited


class Section(Strict):
    """A top-level section of the grid file that a threat model reads (`membership:`,
    `poisoning:`). `identity()` is what of it makes a cell's hash: all of it but the fields named
    in `how_it_runs`, settings that change how a cell computes, never what (a batched fit that
    gives the lone fits' bits): a cell is the same cell, and its record stays valid, either way."""

    how_it_runs: ClassVar[tuple[str, ...]] = ()

    def identity(self) -> dict:
        return self.model_dump(exclude=set(self.how_it_runs))


class ThreatModel(BaseModel):
    """The base of every family's threat model; see the module's docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fields that are top-level sections of the grid file rather than matrix axes.
    sections: ClassVar[tuple[str, ...]] = ()
    # The tag that gives the length of the lists served to the attacker, where there is one: the
    # K a summary shows by default.
    list_axis: ClassVar[str | None] = None

    @classmethod
    def axes(cls) -> dict[str, FieldInfo]:
        """The matrix axes this threat model reads, in declaration order."""
        return {name: info for name, info in cls.model_fields.items() if name not in cls.sections}

    @classmethod
    def model_axes(cls) -> tuple[str, ...]:
        """The axes that name a model (resolved with the grid's training settings)."""
        return tuple(name for name, info in cls.axes().items() if info.annotation is Component)

    @classmethod
    def numeric_axes(cls) -> tuple[str, ...]:
        """The axes whose values are numbers (a share, a budget): what a curve is drawn along."""
        return tuple(name for name, info in cls.axes().items()
                     if _base(_strip_optional(info.annotation)[0]) in (int, float))

    @classmethod
    def section_models(cls) -> dict[str, type[BaseModel]]:
        return {name: cls.model_fields[name].annotation for name in cls.sections}

    def identity(self, target: Component) -> dict:
        """What of the threat model makes a cell's identity (its hash). `target` is the cell's
        resolved target, for threat models whose identity names it."""
        return self.model_dump()

    def tags(self, target: Component) -> dict[str, Any]:
        """The axis values as tables and run tags show them (a model by its label)."""
        return {name: value.label() if isinstance(value, Component) else value
                for name, value in ((n, getattr(self, n)) for n in self.axes())}


def check_axis_value(info: FieldInfo, value: Any) -> str | None:
    """None when `value` is valid for the axis, else what the axis expects (for a one-line error)."""
    if info.annotation is Component:
        try:
            Component.model_validate(value)
        except ValidationError:
            return "a model name or {name: ..., params...}"
        return None
    try:
        if _is_float(info):
            _adapter(info).validate_python(_no_bool(value))
        else:
            _adapter(info).validate_python(value, strict=True)
    except (ValidationError, TypeError):
        return describe(info)
    return None


def describe(info: FieldInfo) -> str:
    """What an axis takes, in words: "a number in (0, 1]", "an integer >= 0 or null", "one of a, b"."""
    if info.annotation is Component:
        return "a model (or same: the target's)"
    annotation, nullable = _strip_optional(info.annotation)
    bounds = _bounds(info, annotation)
    if typing.get_origin(annotation) is Literal:
        text = f"one of {', '.join(map(str, typing.get_args(annotation)))}"
    elif _base(annotation) is float:
        low = f"({bounds['gt']}" if "gt" in bounds else f"[{bounds.get('ge', '-inf')}"
        high = f"{bounds['lt']})" if "lt" in bounds else f"{bounds.get('le', 'inf')}]"
        text = f"a number in {low}, {high}"
    elif _base(annotation) is int:
        limits = [f">= {bounds['ge']}"] if "ge" in bounds else [f"> {bounds['gt']}"] if "gt" in bounds else []
        limits += [f"<= {bounds['le']}"] if "le" in bounds else []
        text = "an integer" + (" " + " and ".join(limits) if limits else "")
    else:
        text = f"a value of type {annotation}"
    return text + (" or null" if nullable else "")


def shown_default(info: FieldInfo) -> Any:
    """An axis's default as a grid file would write it."""
    default = info.get_default()
    return default.label() if isinstance(default, Component) else "null" if default is None else default


def _adapter(info: FieldInfo) -> TypeAdapter:
    return TypeAdapter(Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation)


def _is_float(info: FieldInfo) -> bool:
    return _base(_strip_optional(info.annotation)[0]) is float


def _no_bool(value: Any) -> Any:
    # YAML's `true` is no share of anything (pydantic would read it as 1.0).
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value is None:
        raise TypeError(value)
    return value


def _strip_optional(annotation) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _base(annotation):
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation


def _bounds(info: FieldInfo, annotation) -> dict[str, Any]:
    metadata = list(info.metadata)
    if typing.get_origin(annotation) is Annotated:
        for extra in typing.get_args(annotation)[1:]:
            metadata += extra.metadata if isinstance(extra, FieldInfo) else [extra]
    out = {}
    for item in metadata:
        for name in ("gt", "ge", "lt", "le"):
            if isinstance(item, getattr(annotated_types, name.capitalize())):
                out[name] = getattr(item, name)
    return out
