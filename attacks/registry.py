"""Name -> attack class registry. Each class declares its `family` and a frozen `Config`."""

from __future__ import annotations

_REGISTRY: dict[str, type] = {}


def register_attack(name: str):
    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"attack {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def attack_names(family: str | None = None) -> list[str]:
    return sorted(n for n, c in _REGISTRY.items() if family is None or c.family == family)


def attack_class(name: str) -> type:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown attack {name!r}; known attacks: {', '.join(attack_names())}") from None
