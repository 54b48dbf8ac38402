"""The leaderboard from MLflow runs: pairing each defended cell with its undefended twin, the
protection and utility cost that follow, the Pareto front, and the links back to every run."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsec.harness import leaderboard
from recsec.harness.cli import app
from recsec.harness.errors import RecsecError
from recsec.harness.leaderboard_render import to_csv_text, to_html_text, to_markdown_text
from recsec.harness.tracking import CELL_HASH, FAMILY, KIND, Tracker

from helpers.browser import assert_renders

AXIS_DEFAULTS = {"target": "bpr", "clone": "bpr", "known_share": "0.1", "known_unit": "users", "list_length": "10",
                 "query_budget": "all", "aux_share": "1.0", "item_overlap": "1.0"}


def log_cell(tracker, experiment, attack, defense, seed, metrics, family="stealing", tagged=True, **axes):
    exp = tracker.experiment(experiment)
    tags = {KIND: "cell", CELL_HASH: f"{experiment}-{attack}-{defense}-{seed}-{sorted(axes.items())}",
            "recsec.grid": experiment, "recsec.dataset": "ml-1m", **AXIS_DEFAULTS, **axes,
            "attack": attack, "defense": defense, "seed": seed}
    if tagged:
        tags[FAMILY] = family
    return tracker.log_run(exp, f"{attack} [{defense}] seed={seed}", tags, {"attack.name": attack.split("(")[0]},
                           metrics)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A stealing grid with three output defenses of known effect, a membership grid, and a
    stealing grid that sweeps the query budget."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    tracker = Tracker(uri)
    # defense -> (agreement drop, recall drop); `costly` protects less than `mix` for more cost.
    effects = {"none": (0.0, 0.0), "mix": (0.10, 0.02), "strong": (0.30, 0.10), "costly": (0.05, 0.05),
               "mix_again": (0.10, 0.02)}  # mix under another name: no test can separate the two
    for attack, base in (("ptd", 0.40), ("ptq", 0.60)):
        for defense, (drop, cost) in effects.items():
            for seed in (0, 1):
                recall = 0.30 + seed / 100
                log_cell(tracker, "steal", attack, defense, seed, {
                    "agr_at_10": base + seed / 100 - drop, "recall_at_10": recall,
                    "defended_recall_at_10": recall - cost})
    for defense, auc in (("none", 0.9), ("popularity_randomization", 0.15)):
        for seed in (0, 1):
            # Logged before the family tag existed: the registry names the family.
            log_cell(tracker, "mia", "zhang_mlp", defense, seed, {"roc_auc": auc, "recall_at_10": 0.2},
                     tagged=False)
    for budget, agreement in (("10", 0.2), ("50", 0.4), ("all", 0.5)):
        for seed in (0, 1):
            log_cell(tracker, "budget", "ptq", "none", seed, {"agr_at_10": agreement, "recall_at_10": 0.3},
                     query_budget=budget)
    return uri


def boards_by_family(uri, grids=None):
    return {b.family: b for b in leaderboard.build(leaderboard.load_cells(uri, grids), k=10,
                                                     mlflow_url="http://mlflow.example:5000")}


def test_defenses_are_paired_with_their_undefended_twin(store):
    board = boards_by_family(store, ["steal"])["stealing"]
    pareto = board.pareto.set_index("defense")
    assert pareto.loc["mix", "protection"] == pytest.approx(0.10)
    assert pareto.loc["mix", "utility_cost"] == pytest.approx(0.02)
    assert pareto.loc["strong", "pairs"] == 4  # 2 attacks x 2 seeds
    # Two seeds, 0.60 and 0.61: the t interval over them (df 1) is wide, and honest about it.
    assert str(board.matrix.loc["ptq", "none"]) == "0.605 [0.541, 0.669] (2 seeds)"
    assert str(board.matrix.loc["utility cost (Δrecall_at_10)", "strong"]) == "0.100 [0.100, 0.100]"


def test_defenses_are_ranked_by_protection_and_ties_share_a_rank(store):
    board = boards_by_family(store, ["steal"])["stealing"]
    rank = board.pareto.set_index("defense")["rank"]
    assert rank["strong"] == 1 and rank["mix"] == rank["mix_again"] == 2 and rank["costly"] == 4
    assert rank["none"] == 5
    # Every defense but the twin of mix changes what PTQ steals, at every seed: marked.
    assert str(board.matrix.loc["ptq", "strong"]).startswith("0.305 [") and " * (2 seeds)" in str(
        board.matrix.loc["ptq", "strong"])
    entries = board.entries.set_index(["attack", "defense"])
    assert entries.loc[("ptq", "mix"), "protection_significant"]
    assert not entries.loc[("ptq", "none"), "protection_significant"]  # none against itself: nothing


def test_the_pareto_front_drops_a_defense_that_protects_less_for_more(store):
    front = boards_by_family(store, ["steal"])["stealing"].pareto.set_index("defense")["pareto_optimal"]
    assert bool(front["mix"]) and bool(front["strong"]) and bool(front["none"])
    assert not bool(front["costly"])  # mix protects more for less


def test_membership_protection_counts_a_flipped_auc_as_leakage(store):
    board = boards_by_family(store)["membership"]
    assert board.success == "roc_auc"
    # The same leakage gap at both seeds (0.9 against max(0.15, 0.85)): certain, so marked.
    assert str(board.matrix.loc["zhang_mlp", "popularity_randomization"]) == "0.150 [0.150, 0.150] * (2 seeds)"
    # AUC 0.15 leaks as much as 0.85: protection 0.9 - 0.85, not 0.9 - 0.15.
    protection = board.pareto.set_index("defense").loc["popularity_randomization", "protection"]
    assert protection == pytest.approx(0.05)


def test_entries_name_grid_code_version_cell_hashes_and_link_every_run(store):
    entries = boards_by_family(store, ["steal"])["stealing"].entries
    row = entries[(entries.attack == "ptq") & (entries.defense == "mix")].iloc[0]
    assert row["grid"] == "steal" and row["seeds"] == 2
    assert row["code_versions"].startswith("0.")
    assert [seed for seed, _, _ in row["runs"]] == ["0", "1"]
    assert all(url.startswith("http://mlflow.example:5000/#/experiments/") for _, _, url in row["runs"])
    assert "target" in entries and "known_share" not in entries  # constant axes say nothing


def test_markdown_csv_and_html_carry_the_same_entries(store, tmp_path):
    boards = leaderboard.build(leaderboard.load_cells(store), k=10)
    md = to_markdown_text(boards)
    assert "## stealing: agr_at_10" in md and "## membership: roc_auc" in md and "[0](http://" in md
    csv = pd.read_csv(io.StringIO(to_csv_text(boards)))
    assert len(csv) == 10 + 2 + 3 and set(csv["family"]) == {"stealing", "membership"}
    assert {"success_low", "success_high", "protection_p_adjusted", "protection_significant"} <= set(csv.columns)
    page = tmp_path / "board.html"
    page.write_text(to_html_text(boards, source=store))
    assert_renders(page, tables=6, images=2)  # matrix, Pareto, entries per family; a Pareto plot each


def test_the_command_filters_grids_and_names_a_missing_one(store, tmp_path):
    runner = CliRunner()
    only = runner.invoke(app, ["leaderboard", "--tracking-uri", store, "--grid", "mia", "--format", "csv"])
    assert only.exit_code == 0, only.output
    assert set(pd.read_csv(io.StringIO(only.stdout))["family"]) == {"membership"}
    missing = runner.invoke(app, ["leaderboard", "--tracking-uri", store, "--grid", "nope"])
    assert missing.exit_code == 2 and "no finished cells in experiments nope" in missing.output


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(RecsecError, match="no finished cells in any experiment"):
        leaderboard.load_cells(f"sqlite:///{tmp_path / 'empty.db'}")


def test_a_grid_page_draws_the_curve_along_its_swept_axis(store, tmp_path):
    from recsec.harness.grid_report import grid_page

    page = tmp_path / "budget.html"
    page.write_text(grid_page(leaderboard.load_cells(store, ["budget"]), "MLflow", "http://127.0.0.1:5000"))
    text = page.read_text()
    assert "agr_at_10 against query_budget" in text and "Summary at K=10" in text
    assert_renders(page, tables=2, images=1)
