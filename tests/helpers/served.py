"""A small trained target and one of its stealing cells, for tests of serving and the oracle."""

from __future__ import annotations


def served_cell(cache_dir, query_budget: int, list_length: int = 5):
    """(cell, data, target record): BPR-MF on 60 synthetic users, a PTD cell with this budget."""
    from recsec.harness.data import load_dataset
    from recsec.harness.grid import expand, parse_grid
    from recsec.harness.tasks import train_target

    grid = parse_grid({"name": "g", "dataset": {"name": "synthetic", "params": {"n_users": 60, "n_items": 80,
                                                                                 "n_interactions": 1500}},
                       "matrix": {"target": [{"name": "bpr", "epochs": 1, "dim": 8}], "attack": ["ptd"],
                                  "query_budget": [query_budget], "list_length": [list_length]}})
    cell = expand(grid)[0]
    data = load_dataset("synthetic", params=cell.dataset.params, cache_dir=cache_dir)
    return cell, data, train_target(cell, data, "t")
