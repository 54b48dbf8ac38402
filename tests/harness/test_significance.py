"""Significance where people read numbers, through the real command on a real grid: two attacks
that differ only by chance are left tied, an attack that clearly beats them is marked, in the
summary, the pivot, `--compare` and the HTML page a browser shows. The grid is the test family's
(tests/plugins): its blind guessers are random rankings whose seeds are numpy's, so the outcome
is the same on every machine."""

from __future__ import annotations

import csv
import io

import pytest

from helpers.browser import assert_renders
from test_family_plugin import recsec


GRID = """
name: ties
dataset: {name: synthetic, params: {n_users: 300, n_items: 200, n_interactions: 9000}}
seeds: [0, 1, 2, 3]
matrix:
  target: [pop]
  attack: [list_tally, {name: blind_guess, salt: 1}, {name: blind_guess, salt: 2}]
  known_share: [0.5]
  list_length: [20]
metrics: {k: [10, 20]}
profiling: {popularity: train}
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("ties")
    path = cwd / "ties.yaml"
    path.write_text(GRID)
    run = recsec("run", str(path), "--executor", "local", "-q", cwd=cwd)
    assert run.returncode == 0, run.stdout + run.stderr
    return cwd, path


def test_chance_differences_tie_and_a_clear_one_is_marked_in_the_summary(grid):
    cwd, path = grid
    summary = recsec("report", "--grid", str(path), "--format", "csv", cwd=cwd)
    assert summary.returncode == 0, summary.stderr
    rows = {r["attack"]: r for r in csv.DictReader(io.StringIO(summary.stdout))}
    tally, one, two = rows["list_tally"], rows["blind_guess(salt=1)"], rows["blind_guess(salt=2)"]
    # The guessers differ by chance only: neither is marked above the other.
    assert one["popular_precision_at_20_above"] == "" and two["popular_precision_at_20_above"] == ""
    assert float(one["popular_precision_at_20"]) != float(two["popular_precision_at_20"])  # not merely equal
    # Tallying the served lists finds the popular items: above both guessers, after Holm.
    assert set(tally["popular_precision_at_20_above"].split()) == {one["row"], two["row"]}
    assert float(tally["popular_precision_at_20_low"]) > float(one["popular_precision_at_20_high"])


def test_compare_tests_two_named_rows_at_the_seed_level(grid):
    cwd, path = grid
    tied = recsec("report", "--grid", str(path), "--metric", "popular_precision_at_20",
                  "--compare", "attack=blind_guess(salt=1)", "--compare", "attack=blind_guess(salt=2)", cwd=cwd)
    assert tied.returncode == 0, tied.stderr
    assert "paired t over seeds, 4 pairs" in tied.stdout and "no difference shown at 5%" in tied.stdout
    clear = recsec("report", "--grid", str(path), "--compare", "attack=list_tally",
                   "--compare", "attack=blind_guess(salt=1)", cwd=cwd)
    assert clear.returncode == 0 and "(A > B at 5%" in clear.stdout, clear.stderr
    vague = recsec("report", "--grid", str(path), "--compare", "target=pop", "--compare", "attack=list_tally", cwd=cwd)
    assert vague.returncode == 2 and "matches cells that differ in attack" in vague.stderr


def test_the_html_page_shows_the_marks_in_a_browser(grid):
    cwd, path = grid
    page = cwd / "ties.html"
    made = recsec("report", "--grid", str(path), "--format", "html", "-o", str(page), cwd=cwd)
    assert made.returncode == 0, made.stderr
    assert 'class="sig"' in page.read_text()
    assert_renders(page, tables=1, images=0, marks=1)
