"""One record format (harness.record_file): a cell's record is the same whether it ran on Ray, on
the local executor or through benchmarks/grid_in_process.py; `recsec export` writes it from
MLflow, and `recsec report --records` rebuilds every table from records alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from test_cli_e2e import recsec, write_grid



def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One small stealing grid, 2 seeds, run on the local executor and exported."""
    cwd = tmp_path_factory.mktemp("records")
    grid = write_grid(cwd / "rec.yaml", "rec", seeds=(0, 1))
    run = recsec("run", str(grid), "--executor", "local", cwd=cwd)
    assert run.returncode == 0, run.stderr
    exported = recsec("export", str(grid), "-o", "exported.jsonl", cwd=cwd)
    assert exported.returncode == 0 and "wrote 8 records to exported.jsonl" in exported.stdout, exported.stderr
    return cwd, grid


def test_an_exported_record_carries_what_a_reader_needs_to_check_and_rerun_it(ran):
    cwd, _ = ran
    records = read(cwd / "exported.jsonl")
    record = records[0]
    assert record["format"] == "recsec.cell/1"
    assert record["grid"]["file"] == "rec.yaml" and len(record["grid"]["hash"]) == 16
    assert {"torch", "numpy", "scipy", "python"} <= set(record["packages"])
    assert record["device"] == "cpu" and record["node"] and record["wall_seconds"] > 0
    assert record["code"]["fingerprint"] and record["code"]["version"].startswith("0.")
    assert record["target_train_seconds"] > 0 and "recall_at_20" in record["target_metrics"]
    assert record["config"]["attack"]["name"] in ("ptd", "ptq") and record["axes"]["seed"] in (0, 1)
    assert record["mlflow"]["run_id"]
    # Each per-unit metric is the mean of the values kept for it (one per known user).
    for name, units in record["units"].items():
        values = [v for v in units["columns"]["value"] if v is not None]
        assert units["unit"] == "user" and units["n"] == len(units["columns"]["value"])
        assert sum(values) / len(values) == pytest.approx(record["metrics"][name], abs=1e-5), name
    assert {"agr_at_10", "agr_at_20", "defended_recall_at_20"} <= set(record["units"])
    # The same seed's cells graded the same users: their units pair.
    seed0 = [r for r in records if r["seed"] == 0]
    assert len({r["units"]["agr_at_20"]["ids"] for r in seed0}) == 1


def test_grid_in_process_writes_the_same_records(ran):
    cwd, grid = ran
    out = cwd / "in-process.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "grid_in_process.py"), str(grid), "--data-dir",
                           str(cwd / "data"), "--cache-dir", str(cwd / "gip-cache"), "--out", str(out)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    exported = {r["cell_hash"]: r for r in read(cwd / "exported.jsonl")}
    in_process = {r["cell_hash"]: r for r in read(out)}
    assert set(in_process) == set(exported)  # the same cells, by identity
    for cell_hash, record in in_process.items():
        other = exported[cell_hash]
        assert set(record) == set(other) - {"mlflow"}
        assert record["grid"]["hash"] == other["grid"]["hash"] and record["code"] == other["code"]
        assert record["metrics"]["agr_at_20"] == other["metrics"]["agr_at_20"]  # one process each: same bits
        assert record["units"]["agr_at_20"] == other["units"]["agr_at_20"]


def test_a_report_from_records_is_the_report_from_mlflow(ran):
    from typer.testing import CliRunner

    from recsec.harness.cli import app

    cwd, grid = ran
    runner, store, records = CliRunner(), f"sqlite:///{cwd / 'mlflow.db'}", str(cwd / "exported.jsonl")
    for args in ([], ["--metric", "agr_at_20"], ["--metric", "agr_at_20", "--format", "csv"]):
        from_mlflow = runner.invoke(app, ["report", "--grid", str(grid), "--tracking-uri", store, *args])
        from_records = runner.invoke(app, ["report", "--records", records, *args])
        assert from_mlflow.exit_code == 0 and from_records.exit_code == 0, from_records.output
        assert from_records.stdout == from_mlflow.stdout
    board = runner.invoke(app, ["leaderboard", "--records", records, "--format", "csv"])
    assert board.exit_code == 0 and "stealing,10,agr_at_10" in board.stdout, board.output


def test_bad_records_are_refused_with_the_file_and_line(tmp_path):
    from typer.testing import CliRunner

    from recsec.harness.cli import app

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "recsec.cell/1", "grid": {}}\n{"not": "a record"}\n')
    result = CliRunner().invoke(app, ["report", "--records", str(bad)])
    assert result.exit_code == 2 and "bad.jsonl:2: not a recsec cell record" in result.output
    missing = CliRunner().invoke(app, ["report", "--records", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "nope.jsonl: no such records file" in missing.output


def test_a_cell_that_ran_on_ray_keeps_the_same_record(tmp_path):
    grid = write_grid(tmp_path / "ray.yaml", "ray-records", seeds=(0,), attacks=("ptq",), defenses=["none"])
    run = recsec("run", str(grid), "--num-cpus", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert recsec("export", str(grid), "-o", "ray.jsonl.gz", cwd=tmp_path).returncode == 0
    import gzip

    (record,) = [json.loads(line) for line in gzip.open(tmp_path / "ray.jsonl.gz", "rt")]
    assert record["oracle_isolated"] is True and "/" in record["node"]  # host/Ray node
    assert record["units"]["agr_at_20"]["n"] > 0 and record["grid"]["file"] == "ray.yaml"


def test_a_run_logged_before_records_is_rebuilt_from_its_tags_params_and_metrics(tmp_path):
    from recsec.harness.export import exported_records
    from recsec.harness.record_file import frame
    from recsec.harness.tracking import CELL_HASH, FAMILY, KIND, Tracker

    uri = f"sqlite:///{tmp_path / 'old.db'}"
    tracker = Tracker(uri)
    experiment = tracker.experiment("old-grid")
    for seed in (0, 1):
        tags = {KIND: "cell", CELL_HASH: f"cell{seed}", FAMILY: "stealing", "recsec.grid": "old-grid",
                "attack": "ptq", "defense": "none", "target": "bpr", "seed": seed}
        tracker.log_run(experiment, f"ptq seed={seed}", tags, {"attack.name": "ptq", "seed": seed},
                        {"agr_at_10": 0.5 + seed / 10, "cell_seconds": 3.0})
    records, rebuilt = exported_records(uri, "old-grid")
    assert rebuilt == 2 and {r["cell_hash"] for r in records} == {"cell0", "cell1"}
    assert all(r["rebuilt_from_run"] and r["units"] == {} and r["config"]["attack"]["name"] == "ptq" for r in records)
    table = frame(records)
    assert sorted(table["metrics.agr_at_10"]) == [0.5, 0.6] and set(table["tags.attack"]) == {"ptq"}
