"""Name -> model class registry, and save/load of trained models as plain state dicts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from models.base import Recommender

_REGISTRY: dict[str, type["Recommender"]] = {}


def register_model(name: str):
    """Class decorator: make a Recommender constructible by `name` from grids and the CLI."""

    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice ({_REGISTRY[name]} and {cls})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def model_class(name: str) -> type["Recommender"]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(model_names())}") from None


def create_model(name: str, n_users: int, n_items: int, **params: Any) -> "Recommender":
    """Build an untrained model; `params` are fields of the model's config dataclass."""
    cls = model_class(name)
    return cls(n_users, n_items, cls.Config(**params))


def save_model(model: "Recommender", path: Path) -> None:
    """Write a model as a plain dict of tensors and primitives (loadable with weights_only)."""
    torch.save(model.to_payload(), path)


def model_from_payload(payload: dict) -> "Recommender":
    cls = model_class(payload["model"])
    model = cls(payload["n_users"], payload["n_items"], cls.Config(**payload["config"]))
    model.load_state_dict(payload["state"])
    return model


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
        return model_class(self.name)(n_users, n_items, self.config())
