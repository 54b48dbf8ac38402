"""User extensions: modules named in `$RECSEC_PLUGINS` (comma-separated) are imported by the
driver and by every worker, so their `@register_model/attack/defense` entries become usable in
grids without editing recsec. Local Ray workers inherit the variable from the driver."""

from __future__ import annotations

import importlib
import os

from recsec.harness.errors import RecsecError

ENV = "RECSEC_PLUGINS"
_loaded: set[str] = set()


def load_plugins() -> list[str]:
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    for name in names:
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise RecsecError(f"${ENV}: cannot import plugin module {name!r}: {exc}") from exc
        _loaded.add(name)
    return names
