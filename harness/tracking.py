"""MLflow tracking: the only module that talks to MLflow. Only the driver calls it.

One experiment per grid, one run per cell and one per trained target. Each run is created,
filled and closed in one go, so a killed grid leaves at most a RUNNING run behind, which the next
run marks KILLED and does not count as done.
"""

from __future__ import annotations

import fcntl
import functools
import gzip
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

import logging

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow announces schema migrations of a new sqlite store at INFO: noise for a CLI user.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)

from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from recsec.harness.run_tags import (CELL_HASH, CODE, CODE_VERSION, DRIVER, ERROR, FAMILY, KIND,  # noqa: E402,F401
                                     NODE, ORACLE_ISOLATED, TARGET_HASH, flatten)
from recsec.harness.version import code_version, git_commit  # noqa: E402

_MAX_TAG = 4900


class Tracker:
    def __init__(self, tracking_uri: str):
        self.uri = tracking_uri
        with _store_lock(tracking_uri):
            # MLflow creates or migrates a sqlite store when a client first opens it; two processes
            # doing it at once (`recsec run` and `recsec status` on a fresh store) break each
            # other's migration.
            self.client = MlflowClient(tracking_uri=tracking_uri)
            self.client.search_experiments(max_results=1)

    def experiment(self, grid_name: str, create: bool = True) -> str | None:
        with _store_lock(self.uri):  # two drivers of one grid must not both create its experiment
            exp = self.client.get_experiment_by_name(grid_name)
            if exp is not None:
                if exp.lifecycle_stage == "deleted":
                    self.client.restore_experiment(exp.experiment_id)
                return exp.experiment_id
            return self.client.create_experiment(grid_name) if create else None

    def runs(self, experiment_id: str, filter_string: str = "") -> list:
        out, token = [], None
        while True:
            page = self.client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    def finished(self, experiment_id: str, kind: str) -> dict[str, str]:
        """hash -> run id of every FINISHED run of this kind ('cell' or 'target')."""
        return {h: run.info.run_id for h, run in self._finished_runs(experiment_id, kind).items()}

    def finished_codes(self, experiment_id: str, kind: str) -> dict[str, str | None]:
        """hash -> the code fingerprint of its latest FINISHED run (None: logged before codes were)."""
        return {h: run.data.tags.get(CODE) for h, run in self._finished_runs(experiment_id, kind).items()}

    def _finished_runs(self, experiment_id: str, kind: str) -> dict:
        key = CELL_HASH if kind == "cell" else TARGET_HASH
        runs = self.runs(experiment_id, f"tags.`{KIND}` = '{kind}' and attributes.status = 'FINISHED'")
        latest = {}
        for run in sorted(runs, key=lambda r: r.info.start_time):
            if key in run.data.tags:
                latest[run.data.tags[key]] = run
        return latest

    def close_stale(self, experiment_id: str) -> int:
        """Mark runs a killed driver left RUNNING as KILLED; returns how many."""
        stale = self.runs(experiment_id, "attributes.status = 'RUNNING'")
        for run in stale:
            self.client.set_terminated(run.info.run_id, "KILLED")
        return len(stale)

    def set_driver_state(self, experiment_id: str, state: dict[str, Any]) -> None:
        self.client.set_experiment_tag(experiment_id, DRIVER, json.dumps(state, sort_keys=True))

    def driver_state(self, experiment_id: str) -> dict[str, Any] | None:
        raw = self.client.get_experiment(experiment_id).tags.get(DRIVER)
        return json.loads(raw) if raw else None

    def log_run(
        self,
        experiment_id: str,
        name: str,
        tags: dict[str, Any],
        params: dict[str, Any],
        metrics: dict[str, float],
        error: str | None = None,
        artifacts: dict[str, str] | None = None,
    ) -> str:
        """Create, fill and close one run; `artifacts` are text files to keep with it (a cell's
        record, harness.record_file), gzip-compressed where the name ends in .gz."""
        tags = {**tags, CODE_VERSION: code_version(), "recsec.git_commit": git_commit() or ""}
        if error:
            tags[ERROR] = error[-_MAX_TAG:]
        run = self.client.create_run(experiment_id, run_name=name, tags={k: str(v) for k, v in tags.items()})
        now = int(time.time() * 1000)
        metric_list = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
        param_list = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for chunk in _chunks(metric_list, 900):
            self.client.log_batch(run.info.run_id, metrics=chunk)
        for chunk in _chunks(param_list, 90):
            self.client.log_batch(run.info.run_id, params=chunk)
        for name, text in (artifacts or {}).items():
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / name
                opener = gzip.open if name.endswith(".gz") else open
                with opener(path, "wt", encoding="utf-8") as out:
                    out.write(text)
                self.client.log_artifact(run.info.run_id, str(path))
        self.client.set_terminated(run.info.run_id, "FAILED" if error else "FINISHED")
        return run.info.run_id


    def artifact_text(self, run_id: str, name: str) -> str | None:
        """A text artifact of a run (decompressed where its name ends in .gz), or None when the
        run has none of that name."""
        from mlflow.exceptions import MlflowException

        try:
            if name not in {f.path for f in self.client.list_artifacts(run_id)}:
                return None
            with tempfile.TemporaryDirectory() as folder:
                path = Path(self.client.download_artifacts(run_id, name, folder))
                opener = gzip.open if name.endswith(".gz") else open
                with opener(path, "rt", encoding="utf-8") as text:
                    return text.read()
        except (MlflowException, OSError):
            return None

    def latest_target_metrics(self, experiment_id: str, target_hash: str) -> dict[str, float]:
        run = self._finished_runs(experiment_id, "target").get(target_hash)
        return dict(run.data.metrics) if run is not None else {}


@functools.lru_cache(maxsize=8)
def cached_tracker(tracking_uri: str) -> Tracker:
    """One client per store for the reads a report makes run after run (artifacts)."""
    return Tracker(tracking_uri)


@contextmanager
def _store_lock(tracking_uri: str):
    """An exclusive lock beside a sqlite store's file (`<file>.lock`), held across processes; a
    no-op for a tracking server, which serialises its own writes."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        yield
        return
    db = Path(tracking_uri[len(prefix):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def runs_frame(tracking_uri: str, experiment: str | list[str] | None, kind: str = "cell") -> pd.DataFrame:
    """FINISHED runs of one kind as a DataFrame (`metrics.*`, `params.*`, `tags.*` columns, plus
    `run_id`, `experiment_id` and `experiment`), from one experiment, several, or (None) all."""
    tracker = Tracker(tracking_uri)
    if experiment is None:
        experiments = {e.experiment_id: e.name for e in tracker.client.search_experiments()}
    else:
        names = [experiment] if isinstance(experiment, str) else experiment
        experiments = {i: n for n in names if (i := tracker.experiment(n, create=False)) is not None}
    rows = []
    for exp_id, name in experiments.items():
        for run in tracker.runs(exp_id, f"tags.`{KIND}` = '{kind}' and attributes.status = 'FINISHED'"):
            row = {"run_id": run.info.run_id, "start_time": run.info.start_time,
                   "experiment_id": exp_id, "experiment": name}
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            row.update({f"params.{k}": v for k, v in run.data.params.items()})
            row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
