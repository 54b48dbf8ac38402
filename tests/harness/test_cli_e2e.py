"""End to end through the real `recsec` command: a tiny grid runs, resumes, survives failures."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import yaml

from helpers import cli
from recsec.harness.tracking import CELL_HASH, KIND, Tracker




def write_grid(path: Path, name: str, *, seeds=(0,), attacks=("ptd", "ptq"), defenses=None, resources=None) -> Path:
    grid = {
        "name": name,
        "dataset": {
            "name": "synthetic",
            "params": {"n_users": 200, "n_items": 300, "n_interactions": 8000, "min_user_interactions": 10},
        },
        "seeds": list(seeds),
        "matrix": {
            "target": ["bpr"],
            "attack": [{"name": a, "clone_epochs": 10, **({"epochs": 2} if a == "ptq" else {})}
                       if a in ("ptd", "ptq") else a for a in attacks],
            "defense": defenses or ["none", {"name": "popular_mix", "n": 5}],
            "list_length": [20],
        },
        "training": {"defaults": {"epochs": 5, "dim": 16}},
        "metrics": {"k": [10, 20]},
    }
    if resources:
        grid["resources"] = resources
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def recsec(*args: str, cwd: Path, plugins: bool = False, popen: bool = False):
    """The command; with `plugins`, the failing test attacks of tests/plugins loaded, their crash
    marker and gate in `cwd`."""
    if not plugins:
        return cli.recsec(*args, cwd=cwd, popen=popen)
    return cli.recsec(*args, cwd=cwd, popen=popen, plugins=("failing_attack",),
                      env={"RECSEC_TEST_CRASH_MARKER": str(cwd / "crashed-once"), "RECSEC_TEST_GATE_DIR": str(cwd)})


def cell_runs(cwd: Path, grid_name: str) -> list:
    tracker = Tracker(f"sqlite:///{cwd / 'mlflow.db'}")
    exp = tracker.experiment(grid_name, create=False)
    return [] if exp is None else tracker.runs(exp, f"tags.`{KIND}` = 'cell'")


def count_finished_cells_readonly(cwd: Path) -> int:
    """Poll a store a live driver is writing without opening it through MLflow, which would
    race the driver on the schema migration of a new sqlite store."""
    db = cwd / "mlflow.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(
                "SELECT count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "WHERE r.status = 'FINISHED' AND t.key = ? AND t.value = 'cell'", (KIND,)
            ).fetchone()[0]
    except sqlite3.Error:  # tables not created yet, or locked for a moment
        return 0


def finished_hashes(runs) -> list[str]:
    return [r.data.tags[CELL_HASH] for r in runs if r.info.status == "FINISHED"]


def test_tiny_grid_runs_then_reruns_as_a_no_op(tmp_path):
    grid = write_grid(tmp_path / "tiny.yaml", "tiny")
    first = recsec("run", str(grid), "--num-cpus", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "4 cells finished, 0 failed" in first.stdout
    assert "targets trained 1" in first.stdout
    assert "| ptq(clone_epochs=10,epochs=2) | popular_mix(n=5) |" in first.stdout  # the comparison table
    runs = cell_runs(tmp_path, "tiny")
    assert len(finished_hashes(runs)) == 4 and len(runs) == 4
    tags = runs[0].data.tags
    for axis in ("target", "clone", "attack", "defense", "known_share", "list_length", "query_budget", "seed"):
        assert axis in tags
    assert "agr_at_20" in runs[0].data.metrics and "recall_at_20" in runs[0].data.metrics

    second = recsec("run", str(grid), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "0 cells finished, 0 failed, 4 already done" in second.stdout
    assert len(cell_runs(tmp_path, "tiny")) == 4  # nothing new logged

    status = recsec("status", str(grid), cwd=tmp_path)
    assert "finished     4" in status.stdout
    report = recsec("report", "--grid", str(grid), "--metric", "agr_at_20", "--rows", "attack",
                    "--cols", "defense", "--format", "csv", cwd=tmp_path)
    assert report.returncode == 0 and report.stdout.startswith("attack,defense,mean,low,high,n,interval,above")


def test_status_never_shows_an_ended_driver_beside_counts_read_before_its_last_cell(tmp_path, monkeypatch):
    """`recsec status --watch` stops once the driver has ended, on the counts it printed last:
    those must be final. Replays the moment that broke it: the driver's last cell finishes, and
    the driver ends, between status reading the runs and reading the driver."""
    from recsec.harness.cli.grid_commands import _status_lines

    grid = write_grid(tmp_path / "race.yaml", "race", attacks=("ptd",), defenses=["none"])  # 1 cell
    assert recsec("run", str(grid), "--executor", "local", cwd=tmp_path).returncode == 0
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    experiment = tracker.experiment("race", create=False)
    (last_cell,) = tracker.runs(experiment, f"tags.`{KIND}` = 'cell'")
    ended = tracker.driver_state(experiment)
    tracker.client.update_run(last_cell.info.run_id, status="RUNNING")  # as just before the end
    tracker.set_driver_state(experiment, {**ended, "state": "running"})

    read_runs = Tracker.runs

    def runs_then_the_driver_ends(self, experiment_id, query=""):
        found = read_runs(self, experiment_id, query)
        if query == f"tags.`{KIND}` = 'cell'":  # status counting every cell run, whatever its state
            tracker.client.set_terminated(last_cell.info.run_id, "FINISHED")
            tracker.set_driver_state(experiment, ended)
        return found

    monkeypatch.setattr(Tracker, "runs", runs_then_the_driver_ends)
    lines, driver, all_finished = _status_lines(grid, uri, None, tmp_path / "cache")
    assert driver["state"] == "running" or all_finished, "\n".join(lines)


def test_a_failing_cell_is_recorded_and_a_crashed_worker_is_retried(tmp_path):
    attacks = ("ptd", "explode", "crash_once")
    grid = write_grid(tmp_path / "failing.yaml", "failing", attacks=attacks, defenses=["none"])
    result = recsec("run", str(grid), "--num-cpus", "2", cwd=tmp_path, plugins=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 cells finished, 1 failed" in result.stdout
    assert "boom: this attack always fails" in result.stderr
    runs = {r.data.tags["attack"].split("(")[0]: r for r in cell_runs(tmp_path, "failing")}
    assert runs["ptd"].info.status == "FINISHED"
    assert runs["explode"].info.status == "FAILED"
    assert "boom" in runs["explode"].data.tags["recsec.error"]
    assert (tmp_path / "crashed-once").exists()  # its first worker died...
    assert runs["crash_once"].info.status == "FINISHED"  # ...and the retry finished the cell


def test_the_local_executor_runs_a_grid_in_process_and_a_failed_target_fails_only_its_cells(tmp_path):
    grid = write_grid(tmp_path / "local.yaml", "local", attacks=("ptd", "explode"), defenses=["none"])
    spec = yaml.safe_load(grid.read_text())
    spec["matrix"]["target"] = ["bpr", "broken_pop"]
    spec["matrix"]["clone"] = ["bpr"]
    grid.write_text(yaml.safe_dump(spec))
    result = recsec("run", str(grid), "--executor", "local", cwd=tmp_path, plugins=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 cells finished, 3 failed" in result.stdout and "in this process" in result.stdout
    assert "FAILED target broken_pop seed=0: RuntimeError: this target cannot be trained" in result.stderr
    runs = cell_runs(tmp_path, "local")
    assert len(runs) == 4 and len(finished_hashes(runs)) == 1
    assert {r.data.tags["recsec.node"].split("/")[-1] for r in runs if r.info.status == "FINISHED"} == {"local"}
    failed = [r for r in runs if r.data.tags["target"].startswith("broken_pop")]
    assert all(r.info.status == "FAILED" for r in failed) and len(failed) == 2

    again = recsec("run", str(grid), "--executor", "local", cwd=tmp_path, plugins=True)
    assert "0 cells finished, 3 failed, 1 already done" in again.stdout  # the same cells fail again, nothing else runs


def test_the_attack_holds_only_an_oracle_client_and_the_server_enforces_the_budget(tmp_path):
    grid = write_grid(tmp_path / "served.yaml", "served", attacks=("ptd", "snoop", "greedy"), defenses=["none"])
    spec = yaml.safe_load(grid.read_text())
    spec["matrix"]["query_budget"] = [5]
    grid.write_text(yaml.safe_dump(spec))
    result = recsec("run", str(grid), "--num-cpus", "2", cwd=tmp_path, plugins=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 cells finished, 1 failed" in result.stdout  # the grid went on past the refused cell
    assert "QueryBudgetExceeded: 6 more queries would exceed the budget of 5 (0 used)" in result.stderr
    runs = {r.data.tags["attack"].split("(")[0]: r for r in cell_runs(tmp_path, "served")}
    assert runs["snoop"].info.status == "FINISHED"  # found no model, data, defense or server state
    assert runs["snoop"].data.metrics["queries"] == 1
    assert {runs[a].data.tags["recsec.oracle_isolated"] for a in ("ptd", "snoop")} == {"true"}
    assert runs["greedy"].info.status == "FAILED"

    # In one process the oracle is not isolated: the attack can reach the target, and the run says so.
    local = recsec("run", str(grid), "--executor", "local", "--fresh", "--set", "matrix.attack=[snoop]",
                   cwd=tmp_path, plugins=True)
    assert "the attack's process holds: Interactions, TargetRecord, TargetServer" in local.stderr


def test_a_killed_grid_resumes_and_logs_each_cell_once(tmp_path):
    # 8 cells, 2 targets. One `gate` cell holds its worker until released, so the grid cannot
    # finish before the kill, whatever the machine's speed; the other CPU finishes cells meanwhile.
    grid = write_grid(tmp_path / "resume.yaml", "resume", seeds=(0, 1), attacks=("ptd", "gate"))
    proc = recsec("run", str(grid), "--num-cpus", "2", cwd=tmp_path, plugins=True, popen=True)
    hang_guard = time.time() + 600  # only against a hung driver; the outcome never depends on it
    try:
        while not ((tmp_path / "claimed").exists() and count_finished_cells_readonly(tmp_path) >= 1):
            assert proc.poll() is None, "the grid stopped before it could be killed: " + proc.stderr.read()
            assert time.time() < hang_guard, "no cell finished in 10 minutes"
            time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    done_before = finished_hashes(cell_runs(tmp_path, "resume"))
    assert 1 <= len(done_before) < 8

    (tmp_path / "release").touch()
    result = recsec("run", str(grid), "--num-cpus", "2", cwd=tmp_path, plugins=True)
    assert result.returncode == 0, result.stderr
    assert f"{8 - len(done_before)} cells finished" in result.stdout
    done = finished_hashes(cell_runs(tmp_path, "resume"))
    assert len(done) == 8 and len(set(done)) == 8  # every cell logged exactly once


def test_a_gpu_request_on_a_cpu_cluster_fails_fast_with_a_clear_error(tmp_path):
    grid = write_grid(tmp_path / "gpu.yaml", "gpu", resources={"train": {"num_cpus": 1, "num_gpus": 1}})
    result = recsec("run", str(grid), "--num-cpus", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "resources.train asks for num_cpus=1 num_gpus=1" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_grid_names_file_and_key_and_exits_2(tmp_path):
    grid = write_grid(tmp_path / "bad.yaml", "bad")
    text = grid.read_text().replace("name: ptd", "name: ptx")
    grid.write_text(text)
    result = recsec("run", str(grid), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{grid}: matrix.attack[0]: unknown attack 'ptx'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache" / "targets").exists()  # nothing ran


def test_set_overrides_the_grid_on_the_command_line_and_names_a_bad_key(tmp_path):
    grid = write_grid(tmp_path / "sets.yaml", "sets", seeds=(0, 1, 2))
    result = recsec("plan", str(grid), "--set", "seeds=[4]", "--set", "matrix.attack=[ptq]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "seeds [4]" in result.stdout and "2 cells" in result.stdout  # ptq x 2 defenses x 1 seed
    result = recsec("plan", str(grid), "--set", "matrix.atack=[ptq]", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{grid}: matrix.atack: unknown key" in result.stderr


def test_a_list_longer_than_the_catalogue_is_refused_before_any_work(tmp_path):
    grid = write_grid(tmp_path / "long.yaml", "long", defenses=["none"])
    raw = yaml.safe_load(grid.read_text())
    raw["matrix"]["list_length"] = [300]  # the synthetic data has at most 300 items
    grid.write_text(yaml.safe_dump(raw))
    result = recsec("run", str(grid), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{grid}: matrix.list_length: 300 is not below the" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache" / "targets").exists()


def test_a_cross_dataset_membership_grid_trains_its_shadow_on_the_shadow_dataset(tmp_path):
    """Membership cells through Ray and MLflow: the shadow recommender trains on another
    dataset's shadow part; the run table leads with the attack's ROC AUC."""
    synthetic = {"name": "synthetic", "params": {"n_users": 240, "n_items": 300, "n_interactions": 9000,
                                                 "min_user_interactions": 10}}
    grid = {
        "name": "tiny-mia",
        "dataset": synthetic,
        "seeds": [0],
        "matrix": {"target": ["itemcf"], "attack": [{"name": "zhang_mlp", "epochs": 10}],
                   "defense": ["none", "popularity_randomization"], "list_length": [20]},
        "membership": {"shadow_dataset": {**synthetic, "params": {**synthetic["params"], "seed": 7}},
                       "item_dim": 16},
        "metrics": {"k": [10, 20]},
    }
    path = tmp_path / "mia.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    run = recsec("run", str(path), "--num-cpus", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "2 cells finished, 0 failed" in run.stdout and "auxiliary models trained 1" in run.stdout
    assert "roc_auc" in run.stdout.split("\n\n", 1)[1]  # the table after the summary line
    runs = cell_runs(tmp_path, "tiny-mia")
    assert len(runs) == 2 and all(0 <= r.data.metrics["roc_auc"] <= 1 for r in runs)
