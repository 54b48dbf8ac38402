"""Every grid shipped in grids/ validates, expands, and plans one training per distinct target."""

from __future__ import annotations

import json

import pytest

from helpers import REPO
from recsec.harness.grid import expand, load_grid

ROOT = REPO / "grids"
# A folder named bases/ holds what grids extend (no name, no matrix): not a grid itself.
GRIDS = sorted(p for p in ROOT.rglob("*.yaml") if "bases" not in p.relative_to(ROOT).parts)
BASES = sorted(p for p in ROOT.rglob("*.yaml") if "bases" in p.relative_to(ROOT).parts)


def test_there_are_shipped_grids():
    assert any(p.name == "quickstart.yaml" for p in GRIDS)
    assert len([p for p in GRIDS if p.parent.name == "stealing"]) >= 9


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_grid_validates_and_expands(path):
    grid = load_grid(path)
    cells = expand(grid)
    assert len(cells) >= len(grid.seeds)
    assert len({c.cell_hash("digest") for c in cells}) == len(cells)  # no two cells alike
    # One target hash per distinct target identity (what trains it), and the same for every
    # cell that shares it: the planner trains each target once, and never two as one.
    identities = {}
    for cell in cells:
        identities.setdefault(json.dumps(cell.target_identity, sort_keys=True, default=str), set()).add(
            cell.target_hash("digest"))
    assert all(len(hashes) == 1 for hashes in identities.values())
    assert len({h for hashes in identities.values() for h in hashes}) == len(identities)


def test_grid_names_are_unique():
    names = [load_grid(p).name for p in GRIDS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("base", BASES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_base_is_extended_by_some_shipped_grid(base):
    users = [p for p in GRIDS if base.is_relative_to(p.parent)
             and f"extends: {base.relative_to(p.parent).as_posix()}" in p.read_text()]
    assert users, f"{base} is extended by no grid"
