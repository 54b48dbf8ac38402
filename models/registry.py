"""The name registries (models here; attacks and defenses reuse `Registry`), model specs, and
save/load of trained models as plain state dicts.

A registry is filled by its classes' decorators when their modules are imported, and the modules
are named once, as Python entry points (`pyproject.toml`, `[project.entry-points."recsec.models"]`
and so on): a registry imports its group's modules on first lookup, so `pip install` of recsec,
or of a package that declares entry points in the same groups, is the whole registration.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch

if TYPE_CHECKING:
    from recsec.models.base import Recommender


class Configured:
    """A registered component (attack, defense, transform) built from its frozen `Config`
    dataclass; without one, the defaults."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, config=None):
        self.config = config if config is not None else type(self).Config()


_loaded_groups: set[str] = set()
_loading_groups: set[str] = set()  # being imported now: a lookup from inside one of its modules returns
_loading = threading.RLock()  # a served target's actor looks names up from several threads


def load_entry_points(group: str) -> None:
    """Import every module named under the entry-point `group`, once per process (a failed import
    raises, and the next lookup tries again)."""
    if group in _loaded_groups:
        return
    with _loading:
        if group in _loaded_groups or group in _loading_groups:
            return
        _loading_groups.add(group)
        try:
            for entry in importlib.metadata.entry_points(group=group):
                try:
                    entry.load()
                except Exception as exc:
                    raise ImportError(f"entry point {entry.name} = {entry.value} (group {group}) failed to "
                                      f"import: {exc}") from exc
            _loaded_groups.add(group)
        finally:
            _loading_groups.discard(group)


class Registry:
    """Name -> class, filled by a decorator; the modules that hold the classes are the entry
    points of `group`, imported on first lookup (no module probing, no list to keep in sync).

    Shared by models, attacks and defenses; `kind` only words the error messages.
    """

    def __init__(self, kind: str, group: str | None = None, base: type | None = None):
        self.kind = kind
        self.group = group
        self.base = base  # what every registered class subclasses: it declares the capabilities
        self._classes: dict[str, type] = {}

    def register(self, name: str):
        def decorate(cls):
            if name in self._classes:
                raise ValueError(f"{self.kind} {name!r} is registered twice ({self._classes[name]} and {cls})")
            if self.base is not None and not issubclass(cls, self.base):
                raise TypeError(f"{self.kind} {name!r}: {cls.__name__} (in {cls.__module__}) must subclass "
                                f"{self.base.__module__}.{self.base.__qualname__}, which declares what it needs")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorate

    def names(self, keep: Callable[[type], bool] | None = None) -> list[str]:
        self._load()
        return sorted(n for n, cls in self._classes.items() if keep is None or keep(cls))

    def create(self, name: str, **params: Any):
        """An instance of the named class, built from its `Config` dataclass (models, which also
        need their sizes, use `create_model`)."""
        cls = self.get(name)
        return cls(cls.Config(**params))

    def get(self, name: str) -> type:
        self._load()
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}") from None


    def _load(self) -> None:
        if self.group is not None:
            load_entry_points(self.group)


MODELS = Registry("model", group="recsec.models")
register_model = MODELS.register
model_class = MODELS.get


def model_names() -> list[str]:
    return MODELS.names()


def create_model(name: str, n_users: int, n_items: int, **params: Any) -> "Recommender":
    """Build an untrained model; `params` are fields of the model's config dataclass."""
    cls = model_class(name)
    return construct(cls, n_users, n_items, cls.Config(**params))


def save_model(model: "Recommender", path: Path) -> None:
    """Write a model as a plain dict of tensors and primitives (loadable with weights_only)."""
    torch.save(model.to_payload(), path)


# Models of an input kind that `construct` cannot build (visual models need item features)
# register how a payload of theirs is rebuilt; their registry does it when imported, which looking
# up their class does.
_payload_loaders: dict[str, Callable[[dict], "Recommender"]] = {}


def register_payload_loader(input_kind: str, load: Callable[[dict], "Recommender"]) -> None:
    _payload_loaders[input_kind] = load


def model_from_payload(payload: dict) -> "Recommender":
    cls = model_class(payload["model"])
    if cls.input_kind in _payload_loaders:
        return _payload_loaders[cls.input_kind](payload)
    model = construct(cls, payload.get("n_users", 0), payload["n_items"], cls.Config(**payload["config"]))
    model.load_state_dict(payload["state"])
    return model


def construct(cls, n_users: int, n_items: int, config) -> "Recommender":
    """Build a model of any input kind: sequential models have no user table (n_users unused)."""
    if cls.input_kind == "sequences":
        return cls(n_items, config)
    if cls.input_kind == "images":
        raise TypeError(f"{cls.name} is built from item features: use models.visual.create_visual_model")
    return cls(n_users, n_items, config)


def load_model(path: Path) -> "Recommender":
    return model_from_payload(torch.load(path, map_location="cpu", weights_only=True))


def config_dict(config) -> dict:
    return dataclasses.asdict(config)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model by name with its config fields: what a grid's `target`/`clone` axis names."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str, params: dict | None = None) -> "ModelSpec":
        return cls(name, tuple(sorted((params or {}).items())))

    def config(self):
        cls = model_class(self.name)
        return cls.Config(**dict(self.params))

    def build(self, n_users: int, n_items: int) -> "Recommender":
        return construct(model_class(self.name), n_users, n_items, self.config())

    @property
    def input_kind(self) -> str:
        """"users" (scores user ids) or "sequences" (scores item sequences)."""
        return model_class(self.name).input_kind
