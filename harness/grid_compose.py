"""How a grid file becomes the mapping that `parse_grid` validates: `extends` (a base grid whose
keys this file adds to or replaces) and command-line overrides (`--set key=value`).

Mappings merge key by key, recursively; any other value (a list, a number) replaces the base's.
So `matrix: {attack: [...]}` over a base keeps the base's targets and replaces its attacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from recsec.harness.errors import GridError

EXTENDS = "extends"


def read_grid_file(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any] | Any:
    """The file's YAML with its `extends` chain resolved (paths relative to the file naming them)."""
    path = Path(path)
    if not path.is_file():
        raise GridError(f"{chain[-1] if chain else path}: {EXTENDS}: no such grid file {path}" if chain
                        else f"{path}: no such grid file")
    if path.resolve() in {p.resolve() for p in chain}:
        raise GridError(f"{chain[-1]}: {EXTENDS}: {path} extends itself (through {' -> '.join(map(str, chain))})")
    raw = _yaml(path)
    if not isinstance(raw, dict) or EXTENDS not in raw:
        return raw
    base_name = raw.pop(EXTENDS)
    if not isinstance(base_name, str) or not base_name:
        raise GridError(f"{path}: {EXTENDS}: expected a path to a base grid, got {base_name!r}")
    base = read_grid_file(path.parent / base_name, (*chain, path))
    if not isinstance(base, dict):
        raise GridError(f"{path}: {EXTENDS}: {base_name} is not a mapping")
    return merge(base, raw)


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply_overrides(raw: dict, overrides: Iterable[str], source: str) -> dict:
    """`key.sub=value` for each override, the value read as YAML (`seeds=[0]`, `split.holdout=0.1`)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or any(not part for part in key.split(".")):
            raise GridError(f"{source}: --set {item!r}: expected KEY=VALUE, e.g. seeds=[0] or split.holdout=0.1")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise GridError(f"{source}: --set {key}: not a YAML value ({getattr(exc, 'problem', exc)})") from None
        node = raw
        parts = key.strip().split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise GridError(f"{source}: --set {key}: {'.'.join(parts[:depth + 1])} is not a mapping")
            node = child
        node[parts[-1]] = value
    return raw


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise GridError(f"{path}: not UTF-8 text (byte {exc.start}); a grid is a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise GridError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
