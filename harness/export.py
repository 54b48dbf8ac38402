"""A grid's records out of MLflow (`recsec export`): each finished cell's latest run, as the
record it logged (harness.record_file), with the run's ids added so that links can be rebuilt."""

from __future__ import annotations

import json

import pandas as pd

from recsec.harness import record_file
from recsec.harness.report import cell_frame, experiment_name
from recsec.harness.run_tags import CELL_HASH, CODE, CODE_VERSION, GRID_FILE, GRID_HASH, NODE, ORACLE_ISOLATED, \
    TARGET_HASH
from recsec.harness.tracking import cached_tracker


def exported_records(tracking_uri: str, grid: str) -> tuple[list[dict], int]:
    """The grid's records, and how many of them had to be rebuilt from their run (cells logged
    before runs kept their record: no per-unit values, the config as strings)."""
    frame = cell_frame(tracking_uri, experiment_name(grid))
    tracker = cached_tracker(tracking_uri)
    records, rebuilt = [], 0
    for _, row in frame.iterrows():
        raw = tracker.artifact_text(row["run_id"], record_file.ARTIFACT)
        if raw is None:
            record, rebuilt = _rebuilt(row), rebuilt + 1
        else:
            record = json.loads(raw)
        record["mlflow"] = {"run_id": row["run_id"], "experiment_id": row["experiment_id"]}
        records.append(record)
    return records, rebuilt


def _rebuilt(row: pd.Series) -> dict:
    """A record from a run's tags, params and metrics alone."""
    def tag(name: str, default: str = "") -> str:
        value = row.get(f"tags.{name}")
        return default if value is None or pd.isna(value) else str(value)

    from recsec.harness.grid import all_axes

    metrics = {c.removeprefix("metrics."): (None if pd.isna(v) else float(v))
               for c, v in row.items() if c.startswith("metrics.")}
    config: dict = {}
    for column, value in row.items():
        if column.startswith("params.") and not pd.isna(value):
            *path, leaf = column.removeprefix("params.").split(".")
            node = config
            for part in path:
                node = node.setdefault(part, {})
            node[leaf] = value
    return {
        "format": record_file.FORMAT, "rebuilt_from_run": True,
        "grid": {"name": row["experiment"], "file": tag(GRID_FILE), "overrides": [], "hash": tag(GRID_HASH)},
        "dataset": {"name": tag("recsec.dataset"), "digest": tag("recsec.dataset_digest")},
        "family": row["family"], "cell_hash": tag(CELL_HASH), "target_hash": tag(TARGET_HASH),
        "axes": {axis: tag(axis) for axis in (*all_axes(), "seed") if f"tags.{axis}" in row},
        "seed": int(tag("seed", "0")), "config": config, "metrics": metrics, "target_metrics": {}, "units": {},
        "code": {"fingerprint": tag(CODE), "version": tag(CODE_VERSION), "commit": tag("recsec.git_commit")},
        "packages": {}, "device": tag("recsec.device"), "node": tag(NODE),
        "oracle_isolated": tag(ORACLE_ISOLATED) == "true", "wall_seconds": metrics.get("cell_seconds"),
        "target_train_seconds": None, "finished_at": "",
    }
