"""Name -> defense class registry. A defense class has a frozen `Config` and a `kind`."""

from __future__ import annotations

from typing import Any

_REGISTRY: dict[str, type] = {}


def register_defense(name: str):
    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"defense {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def defense_names() -> list[str]:
    return sorted(_REGISTRY)


def defense_class(name: str) -> type:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown defense {name!r}; known defenses: {', '.join(defense_names())}") from None


def create_defense(name: str, **params: Any):
    cls = defense_class(name)
    return cls(cls.Config(**params))
