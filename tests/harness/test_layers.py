"""The generic harness names no family, attack, defense or model: a family lives in its own home
(attacks/<family>/, defenses/<family>/) and reaches the harness through its registries, so a
sixth family, or one moved out to its own package, changes nothing in harness/. The import
direction itself is checked by `lint-imports` (pyproject.toml's contracts), which `.ci/run` runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from helpers import REPO
from recsec import attacks, defenses, models
from recsec.harness.families import family_names, get_family

HARNESS = REPO / "harness"


def registered_names() -> set[str]:
    """The names a family brings: its own, its attacks', defenses' and models', and the axes and
    sections of its threat model."""
    names = set(family_names()) | set(attacks.attack_names()) | set(defenses.defense_names()) | set(models.model_names())
    names |= {field for name in family_names() for field in get_family(name).threat_model.model_fields}
    return names - {"none"}  # the undefended case is the harness's own word


def code_words(path: Path) -> list[tuple[int, str]]:
    """Identifiers and words of string literals in a module's code: docstrings and comments are
    prose, and attribute names (`rng.random`, `.pop()`) are not names of anything registered."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out += [(node.lineno, word) for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value)]
    return out


def test_the_harness_code_names_no_registered_family_attack_defense_or_model():
    names = registered_names()
    found = [f"{path.relative_to(HARNESS.parent)}:{line}: {word}"
             for path in sorted(HARNESS.rglob("*.py")) for line, word in code_words(path) if word in names]
    assert not found, "the harness names what a family registers:\n" + "\n".join(found)


def test_the_check_itself_finds_a_name_in_code_but_not_in_prose(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Mentions ptq in prose."""\n# ptq in a comment\nx = rng.random(3)\nif attack == "ptq": pass\n')
    assert [(line, word) for line, word in code_words(module) if word in registered_names()] == [(4, "ptq")]


def test_no_module_imports_itself_back():
    """No import cycle, not even one only a type checker follows: every module of recsec can be
    read, and moved, knowing only what it imports."""
    import grimp

    graph = grimp.build_graph("recsec")
    cycles = sorted(f"{module} <-> {imported}" for module in graph.modules
                    for imported in graph.find_modules_directly_imported_by(module)
                    if module < imported and graph.chain_exists(importer=imported, imported=module))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
