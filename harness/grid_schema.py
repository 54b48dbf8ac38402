"""A grid file's schema: the validated shape of a grid, before its families check it.

Nothing here knows a family: the matrix's threat-model axes are kept as extra keys and checked by
`harness.grid_checks` against the families of the grid's attacks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recsec import models
from recsec.harness.data import dataset_names

# The axes every family's cells have: what is attacked, by what, behind what.
CORE_AXES = ("target", "attack", "defense")


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


class ServeResources(Resources):
    """The target servers (harness.serving): what each reserves, and how many a run keeps. By
    default a server reserves nothing (it waits on queries far more than it computes, and never
    holds a task's slot); a grid whose oracle ranks on a GPU, or whose queries are heavy, reserves
    its share here."""

    num_cpus: float = Field(0.0, ge=0)
    servers: int | None = Field(None, ge=1, description="server processes, each hosting the targets assigned "
                                                         "to it; default: one per node of the cluster")


class StageResources(Strict):
    train: Resources = Resources()
    attack: Resources = Resources()
    serve: ServeResources = ServeResources()


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
    """What a grid sweeps: the target, the attack and the defense, and (as extra keys) the axes
    of its families' threat models, checked against them once the grid's families are known."""

    model_config = ConfigDict(extra="allow", frozen=True)

    target: list[Component] = Field(min_length=1)
    attack: list[Component] = Field(min_length=1)
    defense: list[Component] = Field(default_factory=lambda: [Component(name="none")], min_length=1)


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
    # The top-level sections of the grid's families' threat models, validated by their models.
    sections: dict[str, Any] = Field(default_factory=dict, exclude=True)


def content_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve_training(training: Training, comp: Component) -> Component:
    """A model component with the grid's training defaults and per-model overrides filled in."""
    fields = {f.name for f in dataclasses.fields(models.model_class(comp.name).Config)}
    params = {k: v for k, v in training.defaults.items() if k in fields}
    params.update(training.models.get(comp.name, {}))
    params.update(comp.params)
    return Component(name=comp.name, params=params)
