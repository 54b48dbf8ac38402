"""Every grid shipped in grids/ validates, expands, and plans one training per distinct target."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.grid import expand, load_grid

GRIDS = sorted((Path(__file__).resolve().parents[1] / "grids").rglob("*.yaml"))


def test_there_are_shipped_grids():
    assert any(p.name == "quickstart.yaml" for p in GRIDS)
    assert len([p for p in GRIDS if p.parent.name == "stealing"]) >= 9


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_shipped_grid_validates_and_expands(path):
    grid = load_grid(path)
    cells = expand(grid)
    assert len(cells) >= len(grid.seeds)
    assert len({c.cell_hash("digest") for c in cells}) == len(cells)  # no two cells alike
    targets = {c.target_hash("digest") for c in cells}
    assert len(targets) <= len(cells)


def test_grid_names_are_unique():
    names = [load_grid(p).name for p in GRIDS]
    assert len(names) == len(set(names))
