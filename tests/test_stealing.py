"""Model stealing end to end on ML-100k, through the harness's plain task functions (no Ray).

One short BPR target is trained once for the module; each cell is one attack run against it.
Assertions are properties (PTQ beats a random clone and PTD; exact query accounting; the defense
costs utility), never numbers copied from a run.
"""

from __future__ import annotations

import pytest

from harness.data import load_dataset
from harness.grid import expand, parse_grid
from harness.tasks import run_cell, train_target

K = 50
BUDGET = 10
DIGEST = "ml-100k-test"

GRID = {
    "name": "test-stealing",
    "dataset": {"name": "ml-100k"},
    "seeds": [0],
    "matrix": {
        "target": ["bpr"],
        "attack": [{"name": "ptd", "clone_epochs": 100}, {"name": "ptq", "clone_epochs": 100}],
        "defense": ["none", {"name": "popular_mix", "n": 20}],
        "known_share": [0.1],
        "list_length": [K],
        "query_budget": [None, BUDGET, 100_000],
    },
    # Only the cells the assertions need; the others would only cost time.
    "exclude": [
        {"attack": "ptd", "query_budget": BUDGET},
        {"attack": "ptd", "query_budget": 100_000},
        {"attack": "ptd", "defense": "popular_mix"},
        {"defense": "popular_mix", "query_budget": BUDGET},
        {"defense": "popular_mix", "query_budget": 100_000},
    ],
    "training": {"defaults": {"epochs": 30}},
    "metrics": {"k": [10, K]},
}


@pytest.fixture(scope="module")
def data(shared_data_dir, tmp_path_factory):
    return load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def cells():
    cells = expand(parse_grid(GRID, source="test_stealing"))
    return {(c.attack.name, c.defense.name, c.knowledge.query_budget): c for c in cells}


@pytest.fixture(scope="module")
def target(data, cells):
    hashes = {c.target_hash(DIGEST) for c in cells.values()}
    assert len(hashes) == 1  # every cell attacks the same target
    cell = next(iter(cells.values()))
    return train_target(cell, data, hashes.pop())


@pytest.fixture(scope="module")
def results(data, cells, target):
    return {key: run_cell(cell, data, target, cell.cell_hash(DIGEST)).metrics for key, cell in cells.items()}


def test_grid_has_the_expected_cells(cells):
    assert set(cells) == {
        ("ptd", "none", None),
        ("ptq", "none", None),
        ("ptq", "none", BUDGET),
        ("ptq", "none", 100_000),
        ("ptq", "popular_mix", None),
    }


def test_target_learned_something(target, data):
    # A trained target's recall@50 is far above a random ranking's (about K / n_items).
    assert target.metrics["recall_at_50"] > 5 * K / data.n_items
    assert set(target.params) >= {"n_target_users", "n_items", "n_train_interactions"}


def test_ptq_agreement_far_above_random_clone(results, data):
    random_agreement = K / data.n_items  # expected overlap of a random top-K with any top-K
    agr = results[("ptq", "none", None)]["agr_at_50"]
    assert agr > 0.2
    assert agr > 5 * random_agreement


def test_ptq_beats_ptd(results):
    ptq, ptd = results[("ptq", "none", None)], results[("ptd", "none", None)]
    assert ptq["agr_at_50"] > ptd["agr_at_50"]
    assert ptq["agr_at_10"] > ptd["agr_at_10"]


def test_query_accounting_unlimited_budget(results):
    r = results[("ptq", "none", None)]
    assert r["queries"] == r["n_known_users"] > 0
    assert r["items_returned"] == r["queries"] * K


def test_query_accounting_with_budget(results):
    r = results[("ptq", "none", BUDGET)]
    assert r["n_known_users"] > BUDGET  # the budget binds
    assert r["queries"] == BUDGET
    assert r["items_returned"] == BUDGET * K


def test_budget_above_known_users_queries_each_once(results):
    r = results[("ptq", "none", 100_000)]
    assert r["queries"] == r["n_known_users"]
    assert r["items_returned"] == r["queries"] * K


def test_ptd_makes_no_queries(results):
    r = results[("ptd", "none", None)]
    assert r["queries"] == 0 and r["items_returned"] == 0


def test_undefended_served_lists_are_true_lists(results):
    for key in [("ptd", "none", None), ("ptq", "none", None)]:
        r = results[key]
        assert r["agr_served_at_50"] == r["agr_at_50"]
        assert r["defended_recall_at_50"] == r["recall_at_50"]


def test_popular_mix_costs_utility_and_changes_served_lists(results):
    r = results[("ptq", "popular_mix", None)]
    # 20 of 50 items per list are replaced: the defended target is less useful ...
    assert r["defended_recall_at_50"] < r["recall_at_50"]
    assert r["defended_ndcg_at_50"] < r["ndcg_at_50"]
    # ... and what it serves is no longer its true ranking.
    assert r["agr_served_at_50"] != r["agr_at_50"]
    assert r["queries"] == r["n_known_users"]
    assert r["items_returned"] == r["queries"] * K


def test_run_cell_is_deterministic(data, cells, target, results):
    cell = cells[("ptq", "none", BUDGET)]
    again = run_cell(cell, data, target, cell.cell_hash(DIGEST)).metrics
    first = results[("ptq", "none", BUDGET)]
    for name in ("agr_at_10", "agr_at_50", "queries", "items_returned", "defended_recall_at_50"):
        assert again[name] == first[name], name
