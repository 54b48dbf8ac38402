"""The names a run is tagged with, shared by MLflow tracking (harness.tracking) and the record
format (harness.record_file), which must not need MLflow."""

from __future__ import annotations

from typing import Any

KIND = "recsec.kind"
FAMILY = "recsec.family"
# "true" when the cell's attack ran in another process than the one serving its target.
ORACLE_ISOLATED = "recsec.oracle_isolated"
NODE = "recsec.node"
CODE_VERSION = "recsec.code_version"
CODE = "recsec.code"  # the fingerprint of the code that produced a run's numbers (harness.code_identity)
DRIVER = "recsec.driver"  # experiment tag: the live driver's heartbeat (JSON), read by `recsec status`
CELL_HASH = "recsec.cell_hash"
TARGET_HASH = "recsec.target_hash"
ERROR = "recsec.error"
GRID_FILE = "recsec.grid_file"
GRID_HASH = "recsec.grid_hash"
DEVICE = "recsec.device"


def flatten(prefix: str, obj: Any) -> dict[str, Any]:
    """Nested dicts to dotted keys: {'a': {'b': 1}} -> {'a.b': 1}."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), value))
        return out
    return {prefix: obj}
