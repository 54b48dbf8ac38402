"""A family is a plugin: the test family in tests/plugins (catalogue profiling) is registered
through $RECSEC_PLUGINS, with no edit to harness/, and runs through the real CLI into the
summary, the report and the leaderboard."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml

from helpers import cli


def recsec(*args: str, cwd: Path):
    return cli.recsec(*args, cwd=cwd, plugins=("profiling_family",))


def profiling_grid(path: Path, **extra) -> Path:
    grid = {
        "name": "profiling",
        "dataset": {"name": "synthetic", "params": {"n_users": 300, "n_items": 200, "n_interactions": 9000}},
        "seeds": [0, 1],
        "matrix": {"target": ["pop", "bpr"], "attack": ["list_tally", "blind_guess"],
                   "defense": ["none", {"name": "popular_mix", "n": 5}], "known_share": [0.5],
                   "list_length": [20]},
        "training": {"defaults": {"epochs": 3, "dim": 16}},
        "metrics": {"k": [10, 20]},
        "profiling": {"popularity": "train"},
        **extra,
    }
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def test_a_plugin_family_runs_end_to_end_into_report_and_leaderboard(tmp_path):
    grid = profiling_grid(tmp_path / "profiling.yaml")
    run = recsec("run", str(grid), "--num-cpus", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "16 cells finished, 0 failed" in run.stdout
    assert "popular_precision_at_20" in run.stdout  # the family's own summary columns

    summary = recsec("report", "--grid", str(grid), "--format", "csv", cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    rows = list(csv.DictReader(io.StringIO(summary.stdout)))
    assert {"popular_precision_at_20", "queries"} <= set(rows[0])

    board = recsec("leaderboard", "--format", "csv", "--k", "10", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    entries = [r for r in csv.DictReader(io.StringIO(board.stdout)) if r["family"] == "profiling"]
    assert len(entries) == 8  # 2 targets x 2 attacks x 2 defenses, over 2 seeds each
    success = {(r["target"].split("(")[0], r["attack"], r["defense"]): float(r["success_mean"]) for r in entries}
    # Tallying what a popularity recommender serves finds its popular items; a blind guess does
    # not (about 10/200 of a top-10 by chance).
    assert success[("pop", "list_tally", "none")] > success[("pop", "blind_guess", "none")] + 0.5
    md = recsec("leaderboard", cwd=tmp_path)
    assert "## profiling: popular_precision_at_10" in md.stdout


def test_a_plugin_family_reads_only_its_axes_and_its_section(tmp_path):
    bad_axis = profiling_grid(tmp_path / "axis.yaml")
    spec = yaml.safe_load(bad_axis.read_text())
    spec["matrix"]["aux_share"] = [0.5]
    bad_axis.write_text(yaml.safe_dump(spec))
    result = recsec("plan", str(bad_axis), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad_axis}: matrix.aux_share: no attack family of this grid reads this axis" in result.stderr
    assert "profiling reads target, attack, defense, known_share, list_length, query_budget" in result.stderr

    # What a grid may set for each family, as `recsec list families` tells a user.
    listed = recsec("list", "families", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    profiling = listed.stdout.split("profiling\n")[1].split("\n")
    assert profiling[0].split() == ["known_share", "a", "number", "in", "(0,", "1],", "default", "0.1"]
    assert profiling[2].split()[:5] == ["query_budget", "an", "integer", ">=", "0"]
    assert profiling[3].startswith("  profiling:") and "popularity" in profiling[3]

    bad_section = profiling_grid(tmp_path / "section.yaml", profiling={"popularity": "yesterday"})
    result = recsec("plan", str(bad_section), cwd=tmp_path)
    assert result.returncode == 2 and f"{bad_section}: profiling.popularity:" in result.stderr


def test_an_attack_that_does_not_subclass_attack_is_refused_when_it_registers():
    import pytest

    from recsec.attacks.registry import register_attack

    with pytest.raises(TypeError, match=r"attack 'undeclared': Undeclared \(in .*\) must subclass recsec.attacks.base.Attack"):
        @register_attack("undeclared")
        class Undeclared:  # declares nothing the pairing checks read
            pass


def test_a_server_that_dies_mid_grid_comes_back_and_its_cells_finish(tmp_path):
    """The target's server is killed (SIGKILL) at the grid's first query: Ray restarts it from the
    same target, and the attacks it was serving start again with fresh sessions, so the first run
    finishes every cell, each with its whole budget's count."""
    marker = tmp_path / "crashed"
    grid = profiling_grid(tmp_path / "crash.yaml", seeds=[0],
                          matrix={"target": ["pop"], "attack": ["list_tally"], "known_share": [0.5],
                                  "list_length": [20], "query_budget": [40]},
                          profiling={"popularity": "train", "crash_server_once": str(marker)})
    run = recsec("run", str(grid), "--num-cpus", "2", cwd=tmp_path)
    assert marker.exists(), "the server never crashed: the test tested nothing"
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 cells finished, 0 failed" in run.stdout
    summary = recsec("report", "--grid", str(grid), "--format", "csv", cwd=tmp_path)
    (row,) = list(csv.DictReader(io.StringIO(summary.stdout)))
    assert float(row["queries"]) == 40
