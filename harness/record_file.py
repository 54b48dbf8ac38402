"""One record format for a finished cell, however it ran (on Ray, on the local executor, through
benchmarks/grid_in_process.py) and wherever it is kept: as an MLflow run's `record.json.gz`
artifact, or as a line of a JSON-lines file (`recsec export`, benchmarks/grid_in_process.py
`--out`, the records committed under benchmarks/reproduction/records/).

A record holds what a reader needs to check and rerun a number: the cell's axes, seed and full
config; its metrics and the per-unit values behind them (harness.units); the grid file and a hash
of the composed grid; the dataset's digest; the commit, code fingerprint and package versions
that made it; the device, node and wall time. `frame` turns records into the table every report
reads (the same columns as MLflow's runs), so a report needs no MLflow.
"""

from __future__ import annotations

import datetime
import functools
import glob
import gzip
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Iterable

import pandas as pd

from recsec.harness.errors import RecsecError
from recsec.harness.run_tags import (CELL_HASH, CODE, CODE_VERSION, DEVICE, FAMILY, GRID_FILE, GRID_HASH, KIND,
                                     NODE, ORACLE_ISOLATED, TARGET_HASH, flatten)
from recsec.harness.units import PerUnit
from recsec.harness.version import code_version, git_commit

FORMAT = "recsec.cell/1"
ARTIFACT = "record.json.gz"  # the record's name among an MLflow cell run's artifacts (compressed)
PACKAGES = ("torch", "numpy", "scipy", "pandas", "ray", "mlflow")


def grid_hash(grid) -> str:
    """A hash of the composed grid (after `extends` and `--set`), its families' sections included."""
    composed = {**grid.model_dump(mode="json"),
                "sections": {name: section.model_dump(mode="json") for name, section in sorted(grid.sections.items())}}
    return hashlib.sha256(json.dumps(composed, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def cell_document(cell, planned, record, *, grid_file: str, grid_hash: str, dataset_digest: str,
                  target_metrics: dict | None, code: str, overrides: list[str] = ()) -> dict:
    """The record of a finished cell (`record`: the task's CellRecord)."""
    metrics = record.metrics
    return {
        "format": FORMAT,
        # The file, the `--set` overrides given with it, and a hash of the grid they composed.
        "grid": {"name": cell.grid, "file": grid_file, "overrides": list(overrides), "hash": grid_hash},
        "dataset": {"name": cell.dataset.name, "digest": dataset_digest},
        "family": cell.family,
        "cell_hash": planned.cell_hash,
        "target_hash": planned.target_hash,
        "axes": _plain(cell.axes()),
        "seed": cell.seed,
        "config": _plain(cell.normalized()),
        "metrics": {name: _number(value) for name, value in sorted(metrics.items())},
        "target_metrics": {name: _number(value) for name, value in sorted((target_metrics or {}).items())},
        "units": {name: units.to_dict() for name, units in sorted(record.units.items())},
        "code": {"fingerprint": code, "version": code_version(), "commit": git_commit() or ""},
        "packages": package_versions(),
        "device": record.device,
        "node": record.node or platform.node(),
        "oracle_isolated": bool(record.oracle_isolated),
        "wall_seconds": _number(metrics.get("cell_seconds")),
        "target_train_seconds": _number((target_metrics or {}).get("train_seconds")),
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


class CellDocuments:
    """Builds the records of one run's cells; the run's log (MLflow's, or JSON lines) feeds it
    the targets as they are trained or taken from the cache."""

    def __init__(self, plan, grid_file: Path | str | None, overrides: Iterable[str] = ()):
        self.grid_file = _relative(grid_file) if grid_file else ""
        self.overrides = list(overrides)
        self.grid_hash = grid_hash(plan.grid)
        self.dataset_digest = plan.dataset_digest
        self.target_metrics: dict[str, dict] = {}

    def target(self, record) -> None:
        self.target_metrics[record.target_hash] = dict(record.metrics)

    def cell(self, cell, planned, record, code: str) -> dict:
        return cell_document(cell, planned, record, grid_file=self.grid_file, grid_hash=self.grid_hash,
                             overrides=self.overrides, dataset_digest=self.dataset_digest,
                             target_metrics=self.target_metrics.get(planned.target_hash), code=code)


def _relative(path: Path | str) -> str:
    """A grid file as a reader would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# -- files ----------------------------------------------------------------------------------------

def write(path: Path | str, records: Iterable[dict]) -> int:
    """Write records as JSON lines (gzip-compressed when the name ends in .gz); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    count = 0
    with opener(path, "wt", encoding="utf-8") as out:
        for record in records:
            out.write(dumps(record) + "\n")
            count += 1
    return count


def dumps(record: dict) -> str:
    return json.dumps(record, sort_keys=True, allow_nan=False, separators=(",", ":"))


def expand(paths: Iterable[Path | str]) -> list[Path]:
    """Record files: each path a file, a folder (every .jsonl and .jsonl.gz below it) or a glob."""
    out = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.name.endswith((".jsonl", ".jsonl.gz")))
        elif any(c in str(given) for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(str(given), recursive=True))
        else:
            found = [path]
        if not found:
            raise RecsecError(f"{given}: no records files there")
        out += found
    return out


def read(paths: Iterable[Path | str]) -> list[dict]:
    """Every record in these JSON-lines files (plain or .gz; folders and globs as `expand`); an
    error names the file and line."""
    out = []
    for path in expand(paths):
        if not path.is_file():
            raise RecsecError(f"{path}: no such records file")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RecsecError(f"{path}:{number}: not a JSON record ({exc.msg})") from None
                if not isinstance(record, dict) or record.get("format") != FORMAT:
                    raise RecsecError(f"{path}:{number}: not a recsec cell record (format {FORMAT} expected, "
                                      f"got {record.get('format') if isinstance(record, dict) else type(record).__name__!r})")
                record.setdefault("source", str(path))
                out.append(record)
    return out


# -- as a runs table ------------------------------------------------------------------------------

def frame(records: list[dict]) -> pd.DataFrame:
    """Records as the table reports read: one row per cell with `metrics.*`, `params.*` and
    `tags.*` columns named and typed as MLflow's runs table has them (tags are strings), and
    `units` (name -> PerUnit) for the statistics."""
    rows = []
    for number, record in enumerate(records):
        mlflow = record.get("mlflow") or {}
        row = {"run_id": mlflow.get("run_id", ""), "start_time": number,
               "experiment_id": mlflow.get("experiment_id", ""),
               "experiment": record["grid"]["name"], "family": record["family"]}
        row.update({f"metrics.{k}": (float("nan") if v is None else v) for k, v in record["metrics"].items()})
        row.update({f"params.{k}": str(v) for k, v in flatten("", record["config"]).items()})
        tags = {**{axis: value for axis, value in record["axes"].items()},
                KIND: "cell", CELL_HASH: record["cell_hash"], TARGET_HASH: record["target_hash"],
                FAMILY: record["family"], "recsec.grid": record["grid"]["name"], GRID_FILE: record["grid"]["file"],
                GRID_HASH: record["grid"]["hash"], "recsec.dataset": record["dataset"]["name"],
                "recsec.dataset_digest": record["dataset"]["digest"], CODE: record["code"]["fingerprint"],
                CODE_VERSION: record["code"]["version"], "recsec.git_commit": record["code"]["commit"],
                ORACLE_ISOLATED: str(record["oracle_isolated"]).lower(), NODE: record["node"],
                DEVICE: record["device"]}
        row.update({f"tags.{k}": str(v) for k, v in tags.items()})
        row["units"] = {name: PerUnit.from_dict(raw) for name, raw in record.get("units", {}).items()}
        rows.append(row)
    return pd.DataFrame(rows)


def _number(value):
    if value is None:
        return None
    value = float(value)
    return None if value != value or value in (float("inf"), float("-inf")) else value


def _plain(value):
    """JSON-safe: numpy scalars to Python numbers, tuples to lists."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
