"""Results never go stale silently: what "the code that produced it" is, and a plan that tells
current results from those made by other code."""

from __future__ import annotations

import importlib
import sys
import textwrap
import types

import numpy as np
import pytest

from recsec.harness import code_identity, tasks
from recsec.harness.cache import TargetCache
from recsec.harness.grid import expand, parse_grid
from recsec.harness.planner import make_plan, render_plan
from recsec.harness.plugins import ENV as PLUGINS_ENV
from recsec.harness.records import TargetRecord

DIGEST = "d" * 64


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A throwaway package `idpkg`: `model` imports `loss`; `unrelated` is imported by nothing."""
    root = tmp_path / "idpkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "loss.py").write_text("def loss(a, b):\n    return a - b\n")
    (root / "model.py").write_text("from idpkg.loss import loss\n\ndef fit(x):\n    return loss(x, 1)\n")
    (root / "unrelated.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code_identity.clear_caches()
    yield root
    code_identity.clear_caches()
    for name in [m for m in sys.modules if m == "idpkg" or m.startswith("idpkg.")]:
        del sys.modules[name]


def test_a_changed_comment_keeps_the_fingerprint_and_a_changed_loss_does_not(package):
    before = code_identity.fingerprint(["idpkg.model"])
    assert code_identity.closure("idpkg.model") == {"idpkg.model", "idpkg.loss"}

    (package / "loss.py").write_text('"""Now documented."""\n\ndef loss(a, b):  # why\n    return a - b\n')
    code_identity.clear_caches()
    assert code_identity.fingerprint(["idpkg.model"]) == before

    (package / "unrelated.py").write_text("X = 2\n")
    code_identity.clear_caches()
    assert code_identity.fingerprint(["idpkg.model"]) == before

    (package / "loss.py").write_text("def loss(a, b):\n    return b - a\n")
    code_identity.clear_caches()
    assert code_identity.fingerprint(["idpkg.model"]) != before


PLUGIN_MODEL = '''
from recsec.models.bpr import BPRMF
from recsec.models.registry import register_model


@register_model("{name}")
class Plugin(BPRMF):
    def fit(self, train, *, seed=0, on_epoch=None):
        return super().fit(train, seed=seed, on_epoch=on_epoch)
'''


def test_changing_a_models_training_code_marks_its_targets_and_cells_stale(tmp_path, monkeypatch):
    """A target cached and a cell finished under today's code are reused; after the model's
    training code changes, `plan` shows both as stale and would redo them, unless stale results
    are accepted."""
    name = f"stalemf{tmp_path.name[-6:].replace('-', '')}"
    module = tmp_path / f"{name}_plugin.py"
    module.write_text(textwrap.dedent(PLUGIN_MODEL.format(name=name)))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(f"{name}_plugin")
    code_identity.clear_caches()

    grid = parse_grid({"name": "stale", "dataset": {"name": "synthetic"},
                       "matrix": {"target": [name], "attack": ["ptd"]}})
    cells = expand(grid)
    cell = cells[0]
    cache = TargetCache(tmp_path / "cache")
    target_hash, cell_hash = cell.target_hash(DIGEST), cell.cell_hash(DIGEST)
    cache.put(TargetRecord(target_hash, {}, {}, lists=np.zeros((1, 1), dtype=np.int32)), tasks.target_code(cell))
    finished = {cell_hash: tasks.cell_code(cell)}

    plan = make_plan(grid, cells, DIGEST, cache, finished)
    assert target_hash in plan.cached_targets and not plan.stale_targets
    assert plan.cells[0].done and not plan.cells[0].stale

    module.write_text(module.read_text().replace("seed=seed, on_epoch=on_epoch)", "seed=seed + 1, on_epoch=on_epoch)"))
    code_identity.clear_caches()
    plan = make_plan(grid, cells, DIGEST, cache, finished)
    assert plan.stale_targets == {target_hash} and target_hash not in plan.cached_targets
    assert plan.cells[0].stale and not plan.cells[0].done
    assert "stale (made by other code): 1 cells, 1 targets, to redo" in render_plan(plan)

    accepted = make_plan(grid, cells, DIGEST, cache, finished, accept_stale=True)
    assert accepted.cells[0].done and target_hash in accepted.cached_targets


def test_code_installed_in_site_packages_counts_when_it_is_recsecs_or_a_plugins(tmp_path, monkeypatch):
    """A cluster image that pip-installs recsec and its plugins (not editable) still marks results
    stale when their code changes; a third-party package installed beside them counts by nothing."""
    site = tmp_path / "site-packages"
    files = {"recsec.harness.installed_loss": site / "recsec" / "harness" / "installed_loss.py",
             "myplugin.loss": site / "myplugin" / "loss.py",
             "thirdparty.loss": site / "thirdparty" / "loss.py"}
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text("def loss(a, b):\n    return a - b\n")
    # recsec itself is imported from this checkout; stand in a module of it installed elsewhere.
    installed = types.ModuleType("recsec.harness.installed_loss")
    installed.__file__ = str(files["recsec.harness.installed_loss"])
    monkeypatch.setitem(sys.modules, "recsec.harness.installed_loss", installed)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(PLUGINS_ENV, "myplugin")
    try:
        code_identity.clear_caches()
        before = {name: code_identity.fingerprint([name]) for name in files}
        for path in files.values():
            path.write_text("def loss(a, b):\n    return b - a\n")
        code_identity.clear_caches()
        after = {name: code_identity.fingerprint([name]) for name in files}
    finally:
        code_identity.clear_caches()
        for name in [m for m in sys.modules if m.split(".")[0] in ("myplugin", "thirdparty")]:
            del sys.modules[name]

    assert after["recsec.harness.installed_loss"] != before["recsec.harness.installed_loss"]
    assert after["myplugin.loss"] != before["myplugin.loss"]
    assert after["thirdparty.loss"] == before["thirdparty.loss"]


def test_results_logged_before_codes_were_kept_count_as_stale(tmp_path):
    grid = parse_grid({"name": "old", "dataset": {"name": "synthetic"}, "matrix": {"target": ["bpr"], "attack": ["ptd"]}})
    cells = expand(grid)
    plan = make_plan(grid, cells, DIGEST, TargetCache(tmp_path), {cells[0].cell_hash(DIGEST): None})
    assert plan.cells[0].stale and not plan.cells[0].done


def test_recsec_imports_only_under_its_own_name():
    """Installed, recsec claims one name: running a cell never imports a bare `harness`,
    `models`, `attacks` or `defenses` (which would also load a second copy of each registry)."""
    import subprocess
    import sys

    script = ("import sys; import recsec.harness.driver, recsec.harness.cli; "
              "from recsec.harness.families import family_names; family_names(); "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('harness', 'models', 'attacks', 'defenses')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
