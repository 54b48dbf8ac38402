"""Scale-out on one machine: a multi-node Ray cluster (Ray's own cluster utilities, every node on
127.0.0.1), an MLflow server on 127.0.0.1, a shared cache directory, and a grid submitted
detached and followed with `recsec status` from another process."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from recsec.harness.tracking import NODE, Tracker
from helpers.browser import assert_renders
from test_cli_e2e import recsec, write_grid



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--default-artifact-root", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "mlflow-server.log", "wb"), start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "mlflow-server.log").read_text()[-2000:]
            assert time.time() < deadline, "the MLflow server did not answer /health in 120 s"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def ray_cluster():
    """A head that runs nothing (0 CPUs, as on a real cluster) and two 1-CPU worker nodes."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    try:
        cluster.wait_for_nodes()
        yield cluster.address, {w.node_id[:12] for w in workers}
    finally:
        cluster.shutdown()


def test_a_detached_grid_on_a_multi_node_cluster_logs_to_an_mlflow_server_and_shares_its_cache(
        tmp_path, mlflow_server, ray_cluster):
    address, worker_nodes = ray_cluster
    shared_cache = tmp_path / "shared-cache"
    cluster = ["--ray-address", address, "--tracking-uri", mlflow_server, "--cache-dir", str(shared_cache)]
    grid = write_grid(tmp_path / "spread.yaml", "spread", seeds=(0, 1))  # 8 cells, 2 targets

    other = write_grid(tmp_path / "reuse.yaml", "reuse", seeds=(0, 1), defenses=["none"])  # the same 2 targets

    submitted = recsec("run", str(grid), *cluster, "--detach", "--log", str(tmp_path / "driver.log"), cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    assert "driver started in the background" in submitted.stdout
    # A second driver at once, on the same cluster and cache, needs the same targets.
    second = recsec("run", str(other), *cluster, cwd=tmp_path, popen=True)

    # Another shell follows the detached grid through the tracking server until its driver stops.
    watched = recsec("status", str(grid), "--tracking-uri", mlflow_server, "--cache-dir", str(shared_cache),
                     "--watch", "--interval", "2", cwd=tmp_path)
    second_out, second_err = second.communicate(timeout=600)
    log = (tmp_path / "driver.log").read_text()
    assert watched.returncode == 0, watched.stderr + log
    assert "driver: running on" in watched.stdout  # it saw the grid while it ran...
    assert "finished     8" in watched.stdout.split("spread: 8 cells")[-1], watched.stdout + log  # ...and done
    assert "driver: finished" in watched.stdout
    assert "8 cells finished, 0 failed" in log
    assert second.returncode == 0 and "4 cells finished, 0 failed" in second_out, second_out + second_err

    # Each target was trained once, by whichever driver claimed it; the other took it from the cache.
    counts = [re.search(r"targets trained (\d+), from cache (\d+)", text) for text in (log, second_out)]
    trained, reused = (sum(int(m.group(i)) for m in counts) for i in (1, 2))
    assert (trained, reused) == (2, 2), log + second_out

    # Each run says where it ran: on a worker node, never on the head, which has no CPU. (Ray does
    # not promise to spread 8 small tasks over both workers, so neither does this test.)
    tracker = Tracker(mlflow_server)
    runs = tracker.runs(tracker.experiment("spread", create=False), "tags.`recsec.kind` = 'cell'")
    nodes = {r.data.tags[NODE].split("/")[-1] for r in runs}
    assert len(runs) == 8 and nodes and nodes <= worker_nodes, (nodes, worker_nodes)

    # The leaderboard and a grid's report come from the server, with links into its UI.
    page = tmp_path / "leaderboard.html"
    board = recsec("leaderboard", "--tracking-uri", mlflow_server, "--format", "html", "-o", str(page), cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    assert f"{mlflow_server}/#/experiments/" in page.read_text()
    assert_renders(page, tables=3, images=1)
    report = tmp_path / "spread.html"
    made = recsec("report", "--grid", str(grid), "--tracking-uri", mlflow_server, "--format", "html", "-o", str(report),
                  cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert_renders(report, tables=3, images=2)  # summary, matrix, Pareto; heatmap and Pareto plots


def test_status_says_when_a_driver_is_lost(tmp_path):
    from recsec.harness.heartbeat import STALE_AFTER_S, describe

    now = time.time()
    state = {"state": "running", "host": "h", "pid": 1, "started": now - 600, "updated": now - STALE_AFTER_S - 1,
             "cells": 8, "tasks": 10, "tasks_done": 3, "finished": 2, "failed": 0, "log": None}
    assert describe(state, now).startswith("driver: lost")
    assert "run the grid again to resume" in describe(state, now)
    assert describe({**state, "updated": now - 1}, now).startswith("driver: running on h pid 1")
    assert describe(None) == "driver: none has run this grid yet"


def test_status_from_a_machine_without_the_data_counts_what_mlflow_has(tmp_path):
    grid = tmp_path / "elsewhere.yaml"
    grid.write_text("name: elsewhere\ndataset: {name: ml-100k}\nmatrix: {target: [bpr], attack: [ptd]}\n")
    shown = recsec("status", str(grid), "--data-dir", str(tmp_path / "no-data"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "elsewhere: 1 cell (cells not started are not counted here:" in shown.stdout
    assert "driver: none has run this grid yet" in shown.stdout
