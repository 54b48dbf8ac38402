"""Model stealing end to end on ML-100k, through the harness's plain task functions (no Ray).

One short BPR target is trained once for the module; each cell is one attack run against it.
Assertions are properties (PTQ beats a random clone and PTD; exact query accounting; the defense
costs utility), never numbers copied from a run.
"""

from __future__ import annotations

import pytest

from recsec.harness.data import load_dataset
from recsec.harness.grid import expand, parse_grid
from recsec.harness.tasks import run_cell, train_target

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
    return {(c.attack.name, c.defense.name, c.threat.knowledge.query_budget): c for c in cells}


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


def test_the_clone_schedule_is_stated_in_steps_so_it_adapts_to_how_much_is_known():
    """1,000 steps are 50 epochs of 20 batches but 334 epochs of 3 batches: a small known set
    trains as many steps as a large one. `clone_epochs`, when given, is taken as it is."""
    from recsec.attacks.stealing.base import CloneTraining

    schedule = CloneTraining(clone_steps=1000)
    assert schedule.clone_epochs_for(20 * 2048, 2048) == 50
    assert schedule.clone_epochs_for(3 * 2048 - 1, 2048) == 334
    assert schedule.clone_epochs_for(10, 2048) == 1000
    assert CloneTraining(clone_epochs=7).clone_epochs_for(10, 2048) == 7
    with pytest.raises(ValueError, match="clone_steps"):
        CloneTraining(clone_steps=0)


def test_list_learning_has_the_same_step_budget_in_every_recipe():
    """QSD and PTQ's fine-tuning learn lists for the same number of steps, whatever the number of
    queried users; explicit `epochs` wins."""
    from recsec.attacks.stealing.ptq import PTQConfig
    from recsec.attacks.stealing.qsd import QSDConfig

    for config in (PTQConfig(), QSDConfig()):
        assert config.steps == 600
        assert config.list_epochs_for(302) == 300  # 2 batches of 256 lists
        assert config.list_epochs_for(1302) == 100  # 6 batches
    assert PTQConfig(epochs=3).list_epochs_for(10_000) == 3
    with pytest.raises(ValueError, match="ranking_loss"):  # the list part's checks still run
        PTQConfig(ranking_loss="squared")


def test_a_ptd_clone_trains_for_the_schedule_of_its_known_interactions(data):
    """The clone the PTD stage builds carries the epochs the step schedule gives for the view."""
    import numpy as np

    from recsec.attacks.stealing.ptd import PTD, PTDConfig
    from recsec.attacks.threat import AttackerView, Knowledge
    from recsec.harness.splits import choose_known
    from recsec.models import ModelSpec

    known, rows = choose_known(data.matrix, 0.05, "users", np.random.default_rng(0))
    view = AttackerView(n_items=data.n_items, known_users=known, known_interactions=rows, knowledge=Knowledge())
    attack = PTD(PTDConfig(clone_steps=500), clone=ModelSpec.of("bpr", {"batch_size": 1024, "epochs": 30}))
    batches = -(-rows.nnz // 1024)
    assert attack.new_clone(view, "cpu").config.epochs == -(-500 // batches)


def test_clone_top_outside_items_come_from_the_clones_own_top_but_never_the_list_or_known_items():
    """A model that scores item i as i for every user: with the list {9, 7}, user 0's known item 8
    and a pool of 3, the only items the draw may return are 6, 5 and 4 (the highest outside both);
    user 1, who knows nothing, draws from 8, 6 and 5."""
    import scipy.sparse as sp
    import torch

    from recsec.attacks.lists import draw_from_pools, model_top_pools
    from recsec.attacks.stealing.ptq import PTQConfig

    class ScoresByItemId(torch.nn.Module):
        n_items = 10

        def score(self, users):
            return torch.arange(10.0).expand(len(users), -1).clone()

    seen = sp.csr_matrix(([1.0], ([0], [8])), shape=(2, 10))
    lists = torch.tensor([[9, 7], [9, 7]])
    pools = model_top_pools(ScoresByItemId(), torch.tensor([0, 1]), lists, pool=3, seen=seen)
    assert pools.tolist() == [[6, 5, 4], [8, 6, 5]]
    draw = draw_from_pools(pools, 2, 50, torch.Generator().manual_seed(0))
    assert draw.shape == (2, 2, 50)
    assert set(draw[0].flatten().tolist()) == {6, 5, 4}
    assert set(draw[1].flatten().tolist()) == {8, 6, 5}
    assert PTQConfig().outside == "uniform"  # the paper's reading stays the default
    with pytest.raises(ValueError, match="outside"):
        PTQConfig(outside="popular")
