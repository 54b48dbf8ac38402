"""The MLflow store as several recsec commands share it."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

OPEN_STORE = """
import sys
sys.path.insert(0, {repo!r})
from recsec.harness.tracking import Tracker
print(Tracker(sys.argv[1]).experiment("grid"))
"""


def test_commands_started_together_on_a_fresh_store_both_open_it(tmp_path):
    """`recsec run` and `recsec status` started at once on a store that does not exist yet: each
    used to run MLflow's schema migration over the other's and die with a traceback. Four
    processes at once now all open it and agree on the grid's experiment."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = OPEN_STORE.format(repo=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", script, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err[-2000:]
    assert len({out.strip() for out, _ in results}) == 1
