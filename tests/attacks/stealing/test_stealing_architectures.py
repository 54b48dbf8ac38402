"""Every stealing attack against every target architecture agrees with its target far above a
random clone (ML-100k, short training). Properties only: no number copied from a run."""

from __future__ import annotations

import pytest

from recsec.harness.data import load_dataset
from recsec.harness.grid import expand, parse_grid
from recsec.harness.tasks import run_cell, train_target

K = 50
TRAINING = {"bpr": {"epochs": 30}, "lmf": {"epochs": 30}, "ncf": {"epochs": 6, "lr": 3e-3}}


@pytest.fixture(scope="module")
def data(shared_data_dir, tmp_path_factory):
    return load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("target,attack", [
    ("bpr", {"name": "qsd", "epochs": 100}),
    ("lmf", {"name": "ptq", "clone_epochs": 100, "epochs": 20}),
    ("ncf", {"name": "ptq", "clone_epochs": 20, "epochs": 10}),
    ("bpr", {"name": "ptaq", "clone_epochs": 100, "epochs": 10}),
    ("bpr", {"name": "ptaq_pre", "clone_epochs": 100, "epochs": 10}),
    ("ncf", {"name": "pta", "clone_epochs": 10}),
])
def test_clone_agrees_with_target_far_above_random(data, target, attack):
    grid = parse_grid({
        "name": "arch", "dataset": {"name": "ml-100k"},
        "matrix": {"target": [{"name": target, **TRAINING[target]}], "attack": [attack], "list_length": [K]},
        "metrics": {"k": [K]},
    })
    (cell,) = expand(grid)
    record = train_target(cell, data, cell.target_hash("test"))
    result = run_cell(cell, data, record, cell.cell_hash("test")).metrics
    random_clone = K / data.n_items  # expected agreement of a random list
    assert result[f"agr_at_{K}"] > 3 * random_clone, result
    queries = 0 if attack["name"] in ("ptd", "pta", "pta_pre") else result["n_known_users"]
    assert result["queries"] == queries


def test_a_list_only_clone_memorizes_the_users_it_queried(data):
    """QSD learns per-user weights from served lists alone: on the known users it queried it
    agrees far more than on the known users it did not (whose lists it never saw)."""
    grid = parse_grid({
        "name": "memo", "dataset": {"name": "ml-100k"},
        "matrix": {"target": [{"name": "bpr", "epochs": 30}], "attack": [{"name": "qsd", "epochs": 100}],
                   "list_length": [K], "query_budget": [24]},  # about half of the 47 known users
        "metrics": {"k": [K]},
    })
    (cell,) = expand(grid)
    result = run_cell(cell, data, train_target(cell, data, "t"), "c").metrics
    assert result["queries"] == 24
    assert result[f"agr_queried_at_{K}"] > result[f"agr_unqueried_at_{K}"] + 0.2, result
