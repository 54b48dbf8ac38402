"""Validation shared by model configs: errors name the model, the field, the rule and the value."""

from __future__ import annotations


def check_fields(model: str, config, *, at_least_one=(), positive=(), non_negative=()) -> None:
    for name in at_least_one:
        if getattr(config, name) < 1:
            raise ValueError(f"{model}: {name} must be >= 1, got {getattr(config, name)}")
    for name in positive:
        if getattr(config, name) <= 0:
            raise ValueError(f"{model}: {name} must be > 0, got {getattr(config, name)}")
    for name in non_negative:
        if getattr(config, name) < 0:
            raise ValueError(f"{model}: {name} must be >= 0, got {getattr(config, name)}")
