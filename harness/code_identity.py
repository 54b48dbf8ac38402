"""What "the code that produced it" is, for a trained target, an auxiliary model or a cell result.

A result's code is the set of modules that can change its numbers: the module of each component
it names (the model, the attack, the defense, the clone), the harness module that runs its kind
of cell, and every module those import, followed through the import statements. Each module
counts by its syntax tree without docstrings, so a changed comment or docstring changes nothing
while a changed loss, schedule or metric does. The fingerprint is a hash over that set.

What is left out on purpose:
- a package's `__init__` re-exports: `from models import ModelSpec` follows to the module that
  defines `ModelSpec`, not to every module the package imports for registration;
- the harness modules that only orchestrate (planning, the driver, tracking, reports, the CLI):
  they decide which cells run and where the numbers go, not what the numbers are.
Whose code counts: recsec's own modules and the plugins named in `$RECSEC_PLUGINS`, wherever they
are installed (a checkout, an editable install, or site-packages in a cluster's image), and any
other module outside site-packages. Installed third-party packages (numpy, torch) and the standard
library count by nothing: pin those in the environment.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from recsec.harness.plugins import ENV as PLUGINS_ENV

# Modules whose code decides no number a result holds.
ORCHESTRATION = (
    "recsec.harness.cache", "recsec.harness.claims", "recsec.harness.cli", "recsec.harness.code_identity", "recsec.harness.driver",
    "recsec.harness.errors", "recsec.harness.executors", "recsec.harness.grid", "recsec.harness.grid_checks", "recsec.harness.grid_compose", "recsec.harness.grid_report", "recsec.harness.heartbeat",
    "recsec.harness.html", "recsec.harness.leaderboard", "recsec.harness.leaderboard_render", "recsec.harness.planner", "recsec.harness.plots",
    "recsec.harness.plugins", "recsec.harness.report", "recsec.harness.scheduler", "recsec.harness.settings", "recsec.harness.tasks", "recsec.harness.tracking",
    "recsec.harness.version",
)


def fingerprint(modules: list[str] | tuple[str, ...]) -> str:
    """A 16-hex-digit hash of the code of `modules` and of everything they import."""
    reached = set()
    for module in modules:
        reached |= closure(module)
    blob = "\n".join(f"{name}:{source_digest(name)}" for name in sorted(reached))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def clear_caches() -> None:
    """Forget what was read (a long-lived process whose source files changed; tests)."""
    for cached in (source_file, source_digest, _tree, _direct_imports, closure):
        cached.cache_clear()


@functools.lru_cache(maxsize=None)
def closure(module: str) -> frozenset[str]:
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen or _orchestration(name) or source_file(name) is None:
            continue
        seen.add(name)
        if source_file(name).name != "__init__.py":  # a package's imports register its modules
            todo.extend(_direct_imports(name))
    return frozenset(seen)


@functools.lru_cache(maxsize=None)
def source_file(module: str) -> Path | None:
    """The module's .py file if its code counts (see the module's docstring); None for the
    standard library and installed third-party packages."""
    loaded = sys.modules.get(module)
    origin = getattr(loaded, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return None
    path = Path(origin).resolve()
    installed = any(part in ("site-packages", "dist-packages") for part in path.parts)
    if (installed and not _ours_wherever_installed(module)) or _is_stdlib(path):
        return None
    return path


@functools.lru_cache(maxsize=None)
def source_digest(module: str) -> str:
    tree = _tree(module)
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
    tree = ast.parse(source_file(module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=None)
def _direct_imports(module: str) -> tuple[str, ...]:
    is_package = source_file(module).name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            for alias in node.names:
                out.append(_provider(base, alias.name))
    return tuple(name for name in out if name)


def _provider(base: str, name: str) -> str:
    """The module that `from base import name` depends on: the submodule `base.name` if there is
    one, else the module `base`'s __init__ takes `name` from (followed), else `base` itself."""
    if source_file(f"{base}.{name}") is not None:
        return f"{base}.{name}"
    path = source_file(base)
    if path is None or path.name != "__init__.py":
        return base
    for node in _tree(base).body:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            origin = _absolute(node, base)
            if origin != base:
                return _provider(origin, next(a.name for a in node.names if (a.asname or a.name) == name))
    return base


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    anchor = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join(anchor + ([node.module] if node.module else []))


def _ours_wherever_installed(module: str) -> bool:
    plugins = {name.strip().partition(".")[0] for name in os.environ.get(PLUGINS_ENV, "").split(",")}
    return module.partition(".")[0] in {"recsec"} | (plugins - {""})


def _orchestration(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in ORCHESTRATION)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _is_stdlib(path: Path) -> bool:
    stdlib = Path(sys.base_prefix).resolve() / "lib"
    return path.is_relative_to(stdlib)
