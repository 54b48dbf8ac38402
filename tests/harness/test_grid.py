"""Grid files: validation messages, expansion, include/exclude, hashes, training defaults."""

from __future__ import annotations

import copy
import textwrap

import pytest
import yaml

from recsec.harness.errors import GridError
from recsec.harness.grid import expand, load_grid, parse_grid

DIGEST = "d" * 64


def minimal(**extra) -> dict:
    raw = {"name": "g", "matrix": {"target": ["bpr"], "attack": ["ptd"]}}
    raw.update(extra)
    return raw


def with_matrix(**axes) -> dict:
    raw = minimal()
    raw["matrix"].update(axes)
    return raw


def write(tmp_path, text: str, name: str = "grid.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(raw, source="grids/x.yaml") -> str:
    with pytest.raises(GridError) as info:
        parse_grid(raw, source=source)
    return str(info.value)


def file_errors(tmp_path, text: str, name: str) -> str:
    """The error of loading `text` as the grid file `name`."""
    with pytest.raises(GridError) as info:
        load_grid(write(tmp_path, text, name=name))
    return str(info.value)


# --------------------------------------------------------------------------- load / validation


def test_load_valid_grid_file(tmp_path):
    path = write(tmp_path, """\
        name: demo
        seeds: [0, 1]
        matrix:
          target: [bpr]
          attack: [ptd, ptq]
          defense:
            - none
            - {name: popular_mix, n: 10}
        training:
          defaults: {epochs: 5}
    """)
    grid = load_grid(path)
    assert grid.name == "demo"
    assert [c.name for c in grid.matrix.attack] == ["ptd", "ptq"]
    assert grid.matrix.defense[1].params == {"n": 10}
    assert len(expand(grid)) == 1 * 2 * 2 * 2


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(GridError, match="nope.yaml"):
        load_grid(path)


def test_bad_yaml_names_file_and_line(tmp_path):
    message = file_errors(tmp_path, """\
        name: demo
        matrix:
          target: [bpr
          attack: [ptd]
    """, name="broken.yaml")
    assert "broken.yaml" in message
    assert "not valid YAML" in message
    assert "line " in message
    # The unclosed flow sequence starts on line 3; YAML reports where it noticed (line 3 or 4).
    line = int(message.split("line ")[1].split(",")[0])
    assert line in (3, 4)


def test_top_level_not_a_mapping(tmp_path):
    path = write(tmp_path, "- just\n- a list\n", name="list.yaml")
    with pytest.raises(GridError, match="list.yaml.*mapping"):
        load_grid(path)


def test_unknown_top_level_key_names_file_and_key(tmp_path):
    message = file_errors(tmp_path, """\
        name: demo
        matrix: {target: [bpr], attack: [ptd]}
        seedz: [1, 2]
    """, name="typo.yaml")
    assert "typo.yaml" in message
    assert "seedz" in message
    assert "unknown key" in message


def test_unknown_nested_key_gives_key_path():
    raw = minimal(split={"holdout": 0.2, "target_shar": 0.5})
    message = errors_of(raw)
    assert "grids/x.yaml" in message
    assert "split.target_shar" in message


def test_missing_required_key():
    message = errors_of({"name": "g", "matrix": {"target": ["bpr"]}})
    assert "matrix.attack" in message


def test_unknown_attack_lists_known_ones():
    message = errors_of(with_matrix(attack=["ptd", "stealz"]))
    assert "grids/x.yaml" in message
    assert "matrix.attack[1]" in message
    assert "stealz" in message
    for known in ("ptd", "ptq"):
        assert known in message


def test_unknown_model_and_defense_names():
    assert "matrix.target[0]" in errors_of(with_matrix(target=["nosuchmodel"]))
    assert "matrix.clone[0]" in errors_of(with_matrix(clone=["nosuchmodel"]))
    assert "matrix.defense[0]" in errors_of(with_matrix(defense=["nosuchdefense"]))


def test_unknown_attack_parameter_names_it_and_accepted_ones():
    message = errors_of(with_matrix(attack=[{"name": "ptq", "bogus": 1}]))
    assert "matrix.attack[0]" in message
    assert "bogus" in message
    assert "clone_epochs" in message  # the accepted parameters are listed


def test_bad_known_share_range():
    for bad in (0, 1.5, -0.1):
        message = errors_of(with_matrix(known_share=[0.1, bad]))
        assert "grids/x.yaml" in message
        assert "matrix.known_share" in message
        assert "(0, 1]" in message


def test_a_malformed_model_on_a_model_axis_is_a_grid_error():
    for bad in ([5], [{"dim": 3}]):
        assert "matrix.clone[0]: expected a model name or {name: ..., params...}" in errors_of(with_matrix(clone=bad))


def test_bad_list_length_and_budget():
    assert "matrix.list_length" in errors_of(with_matrix(list_length=[0]))
    assert "matrix.query_budget" in errors_of(with_matrix(query_budget=[-1]))


def test_model_config_value_failing_validation(tmp_path):
    message = file_errors(tmp_path, """\
        name: demo
        matrix:
          target: [{name: bpr, epochs: -1}]
          attack: [ptd]
    """, name="neg.yaml")
    assert "neg.yaml" in message
    assert "matrix.target[0]" in message
    assert "epochs" in message


def test_training_override_failing_validation_names_its_path():
    message = errors_of(minimal(training={"models": {"bpr": {"epochs": -1}}}))
    assert "training.models.bpr" in message
    assert "epochs" in message


def test_training_override_for_unknown_model():
    message = errors_of(minimal(training={"models": {"nosuch": {"epochs": 2}}}))
    assert "training.models.nosuch" in message


def test_defense_parameter_failing_validation():
    message = errors_of(with_matrix(defense=[{"name": "popular_mix", "n": -1}]))
    assert "matrix.defense[0]" in message


def test_unknown_axis_in_include_or_exclude():
    assert "exclude[0].colour" in errors_of(minimal(exclude=[{"colour": "red"}]))
    assert "include[0].colour" in errors_of(minimal(include=[{"colour": "red"}]))


def test_include_with_unknown_attack_is_rejected_at_parse_time():
    # Unknown names must be errors "before any work starts", including in `include` entries.
    with pytest.raises(GridError, match="include"):
        parse_grid(minimal(include=[{"attack": "stealz"}]))


def test_include_with_out_of_range_known_share_is_rejected_at_parse_time():
    with pytest.raises(GridError, match="include"):
        parse_grid(minimal(include=[{"known_share": 7}]))


def test_several_problems_reported_together():
    message = errors_of(with_matrix(attack=["stealz"], defense=["nosuchdefense"]))
    assert "matrix.attack[0]" in message and "matrix.defense[0]" in message


# --------------------------------------------------------------------------- expansion


def test_expansion_count_is_product_of_axes_times_seeds():
    raw = minimal(seeds=[0, 1, 2])
    raw["matrix"] = {
        "target": ["bpr", "lmf"],
        "attack": ["ptd", "ptq"],
        "defense": ["none", {"name": "popular_mix", "n": 5}, {"name": "popular_mix", "n": 10}],
        "known_share": [0.1, 0.3],
        "list_length": [20],
        "query_budget": [None, 10],
    }
    cells = expand(parse_grid(raw))
    assert len(cells) == 2 * 2 * 3 * 2 * 1 * 2 * 3
    labels = {tuple(c.axes().values()) for c in cells}
    assert len(labels) == len(cells)  # every cell distinct


def test_clone_same_resolves_to_target():
    cells = expand(parse_grid(minimal(training={"defaults": {"epochs": 3}})))
    (cell,) = cells
    assert cell.threat.clone == cell.target
    assert cell.threat.clone.name == "bpr"


def test_exclude_by_name_string():
    raw = with_matrix(attack=["ptd", "ptq"], defense=["none", {"name": "popular_mix", "n": 5}])
    raw["exclude"] = [{"attack": "ptd", "defense": "popular_mix"}]
    cells = expand(parse_grid(raw))
    combos = {(c.attack.name, c.defense.label()) for c in cells}
    assert combos == {("ptd", "none"), ("ptq", "none"), ("ptq", "popular_mix(n=5)")}


def test_exclude_by_full_dict_only_removes_that_parameterisation():
    raw = with_matrix(defense=[{"name": "popular_mix", "n": 5}, {"name": "popular_mix", "n": 10}])
    raw["exclude"] = [{"defense": {"name": "popular_mix", "n": 10}}]
    cells = expand(parse_grid(raw))
    assert [c.defense.label() for c in cells] == ["popular_mix(n=5)"]


def test_exclude_by_scalar_axis():
    raw = with_matrix(known_share=[0.1, 0.5], query_budget=[None, 10])
    raw["exclude"] = [{"known_share": 0.5, "query_budget": None}]
    cells = expand(parse_grid(raw))
    knowledge = {(c.threat.knowledge.known_share, c.threat.knowledge.query_budget) for c in cells}
    assert knowledge == {(0.1, None), (0.1, 10), (0.5, 10)}


def test_exclude_by_seed():
    # `seed` is an accepted key in exclude entries, so it must remove that seed's cells.
    raw = minimal(seeds=[0, 1], exclude=[{"seed": 1}])
    raw["matrix"]["attack"] = ["ptd", "ptq"]
    cells = expand(parse_grid(raw))
    assert sorted((c.attack.name, c.seed) for c in cells) == [("ptd", 0), ("ptq", 0)]


def test_include_with_seed_adds_only_that_seed():
    raw = minimal(seeds=[0, 1], include=[{"attack": "ptq", "seed": 1}])
    cells = expand(parse_grid(raw))
    assert sorted((c.attack.name, c.seed) for c in cells) == [("ptd", 0), ("ptd", 1), ("ptq", 1)]


def test_include_adds_cell_with_first_values_elsewhere():
    raw = with_matrix(
        attack=["ptd"],
        defense=["none", {"name": "popular_mix", "n": 5}],
        known_share=[0.2, 0.4],
        list_length=[30, 50],
    )
    raw["include"] = [{"attack": {"name": "ptq", "epochs": 3}, "list_length": 100}]
    cells = expand(parse_grid(raw))
    assert len(cells) == 1 * 2 * 2 * 2 + 1
    extra = [c for c in cells if c.attack.name == "ptq"]
    assert len(extra) == 1
    (cell,) = extra
    assert cell.attack.params == {"epochs": 3}
    assert cell.threat.knowledge.list_length == 100
    assert cell.defense.name == "none"  # first value of the defense axis
    assert cell.threat.knowledge.known_share == 0.2  # first value
    assert cell.target.name == "bpr"


def test_include_duplicating_a_matrix_cell_is_dropped():
    raw = with_matrix(attack=["ptd", "ptq"])
    raw["include"] = [{"attack": "ptq"}]
    assert len(expand(parse_grid(raw))) == 2


def test_include_gets_every_seed_and_training_defaults():
    raw = minimal(seeds=[3, 4], include=[{"attack": "ptq"}], training={"defaults": {"epochs": 7}})
    cells = expand(parse_grid(raw))
    extra = [c for c in cells if c.attack.name == "ptq"]
    assert sorted(c.seed for c in extra) == [3, 4]
    assert all(c.target.params["epochs"] == 7 for c in extra)


# --------------------------------------------------------------------------- hashes


BIG = {
    "name": "g",
    "seeds": [0, 1],
    "matrix": {
        "target": ["bpr", {"name": "bpr", "dim": 16}],
        "attack": ["ptd", "ptq"],
        "defense": ["none", {"name": "popular_mix", "n": 5}],
        "known_share": [0.1, 0.2],
        "list_length": [20, 50],
        "query_budget": [None, 10],
    },
    "training": {"defaults": {"epochs": 3}},
}


def test_cell_hashes_stable_across_parses():
    first = [c.cell_hash(DIGEST) for c in expand(parse_grid(copy.deepcopy(BIG)))]
    second = [c.cell_hash(DIGEST) for c in expand(parse_grid(copy.deepcopy(BIG)))]
    assert first == second
    # Also stable through a YAML round trip.
    third = [c.cell_hash(DIGEST) for c in expand(parse_grid(yaml.safe_load(yaml.safe_dump(BIG))))]
    assert third == first


def test_cell_hashes_differ_when_any_axis_or_seed_differs():
    cells = expand(parse_grid(copy.deepcopy(BIG)))
    hashes = [c.cell_hash(DIGEST) for c in cells]
    assert len(set(hashes)) == len(cells) == 2 * 2 * 2 * 2 * 2 * 2 * 2


def test_cell_hash_depends_on_data_digest_and_training_params():
    (cell,) = expand(parse_grid(minimal(training={"defaults": {"epochs": 3}})))
    (other,) = expand(parse_grid(minimal(training={"defaults": {"epochs": 4}})))
    assert cell.cell_hash(DIGEST) != cell.cell_hash("e" * 64)
    assert cell.cell_hash(DIGEST) != other.cell_hash(DIGEST)
    assert cell.target_hash(DIGEST) != other.target_hash(DIGEST)


def test_target_hash_shared_by_cells_differing_only_in_attack_defense_knowledge():
    cells = expand(parse_grid(copy.deepcopy(BIG)))
    groups: dict[tuple, set] = {}
    for c in cells:
        groups.setdefault((c.target.label(), c.seed), set()).add(c.target_hash(DIGEST))
    # One target hash per (target, seed), and different (target, seed) pairs never share one.
    assert all(len(h) == 1 for h in groups.values())
    assert len({next(iter(h)) for h in groups.values()}) == len(groups) == 2 * 2


def test_target_hash_ignores_clone_and_metrics():
    a = expand(parse_grid(minimal()))[0]
    b = expand(parse_grid(with_matrix(clone=["pop"]) | {"metrics": {"k": [5]}}))[0]
    assert a.target_hash(DIGEST) == b.target_hash(DIGEST)
    assert a.cell_hash(DIGEST) != b.cell_hash(DIGEST)


# --------------------------------------------------------------------------- training defaults


def test_training_defaults_apply_only_to_models_with_the_field():
    raw = with_matrix(target=["bpr", "pop"], clone=["same"])
    raw["training"] = {"defaults": {"epochs": 9, "dim": 16}}
    cells = {c.target.name: c for c in expand(parse_grid(raw))}
    assert cells["bpr"].target.params == {"epochs": 9, "dim": 16}
    assert cells["pop"].target.params == {}  # pop has no config fields: nothing applied, no error


def test_per_model_overrides_beat_defaults_and_component_params_beat_both():
    raw = with_matrix(target=["bpr", {"name": "bpr", "epochs": 2}])
    raw["training"] = {"defaults": {"epochs": 9, "dim": 16}, "models": {"bpr": {"epochs": 5, "lr": 0.01}}}
    targets = [c.target.params for c in expand(parse_grid(raw))]
    assert targets == [
        {"epochs": 5, "dim": 16, "lr": 0.01},
        {"epochs": 2, "dim": 16, "lr": 0.01},
    ]


def test_training_defaults_apply_to_clone():
    raw = with_matrix(clone=["bpr"], target=["pop"])
    raw["training"] = {"defaults": {"epochs": 9}}
    (cell,) = expand(parse_grid(raw))
    assert cell.target.params == {}
    assert cell.threat.clone.params == {"epochs": 9}


def test_metric_ks_sorted_and_deduplicated():
    (cell,) = expand(parse_grid(minimal(metrics={"k": [50, 10, 50, 20]})))
    assert cell.metric_ks == (10, 20, 50)


def test_a_clone_without_learnable_weights_is_rejected_for_attacks_that_fine_tune_it():
    with pytest.raises(GridError, match=r"g.yaml: matrix.clone\[0\]: 'pop' has no learnable weights"):
        parse_grid({"name": "t", "matrix": {"target": ["pop"], "attack": ["ptq"]}}, "g.yaml")
    parse_grid({"name": "t", "matrix": {"target": ["pop"], "attack": ["ptd"]}}, "g.yaml")  # PTD only fits it


def test_auxiliary_knowledge_changes_the_auxiliary_model_but_not_the_target():
    raw = {"name": "t", "matrix": {"target": ["bpr"], "attack": ["ptaq"], "aux_share": [0.5, 1.0],
                                   "item_overlap": [0.1, 1.0]}}
    cells = expand(parse_grid(raw))
    assert len(cells) == 4
    assert len({c.target_hash("d") for c in cells}) == 1
    assert len({c.auxiliary_hash("d") for c in cells}) == 4
    assert {c.axes()["item_overlap"] for c in cells} == {0.1, 1.0}
    with pytest.raises(GridError, match=r"matrix.item_overlap\[0\]: expected a number in \(0, 1\], got 0"):
        parse_grid({"name": "t", "matrix": {"target": ["bpr"], "attack": ["ptd"], "item_overlap": [0]}}, "g.yaml")


def test_known_unit_is_an_axis_and_a_bad_unit_names_its_key():
    raw = {"name": "t", "matrix": {"target": ["bpr"], "attack": ["ptd"], "known_unit": ["users", "interactions"]}}
    cells = expand(parse_grid(raw))
    assert [c.threat.knowledge.known_unit for c in cells] == ["users", "interactions"]
    assert len({c.cell_hash("d") for c in cells}) == 2 and len({c.target_hash("d") for c in cells}) == 1
    with pytest.raises(GridError, match=r"g.yaml: matrix.known_unit\[0\]: expected one of users, interactions"):
        parse_grid({"name": "t", "matrix": {"target": ["bpr"], "attack": ["ptd"], "known_unit": ["items"]}}, "g.yaml")
    with pytest.raises(GridError, match=r"include\[0\].*known_unit.*one of users, interactions"):
        parse_grid({"name": "t", "matrix": {"target": ["bpr"], "attack": ["ptd"]},
                    "include": [{"known_unit": "rows"}]}, "g.yaml")


def test_a_binary_grid_file_is_named_as_not_text(tmp_path):
    path = tmp_path / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(GridError, match=r"image.yaml: not UTF-8 text"):
        load_grid(path)


@pytest.mark.parametrize("number", [".nan", ".inf", "-.inf"])
def test_nan_and_infinite_numbers_are_refused_by_key(tmp_path, number):
    path = write(tmp_path, f"""\
        name: demo
        matrix:
          target: [bpr]
          attack: [ptd]
        training:
          defaults: {{lr: {number}}}
    """)
    with pytest.raises(GridError, match=r"grid.yaml: training.defaults.lr: must be a finite number"):
        load_grid(path)


@pytest.mark.parametrize("name", ["../escape", "a/b", "with space", ".hidden"])
def test_a_grid_name_must_be_a_safe_file_name(name):
    # The name becomes the driver's log file names: no directories, no hidden files.
    assert "name:" in errors_of(minimal(name=name))


def test_a_fractional_request_above_one_gpu_is_refused():
    message = errors_of(minimal(resources={"train": {"num_gpus": 1.5}}))
    assert "resources.train.num_gpus: a request above 1 GPU must be a whole number" in message
    parse_grid(minimal(resources={"train": {"num_gpus": 0.25}, "attack": {"num_gpus": 2}}))


def test_an_output_defense_that_replaces_more_items_than_a_list_has_is_refused():
    raw = with_matrix(defense=[{"name": "popular_mix", "n": 25}], list_length=[10, 50])
    assert "matrix.defense[0]: popular_mix: n=25 replaces more items than a list of 10 has" in errors_of(raw)
    parse_grid(with_matrix(defense=[{"name": "popular_mix", "n": 25}], list_length=[50]))


def test_a_grid_extends_a_base_and_replaces_only_what_it_names(tmp_path):
    """Mappings merge key by key; lists and numbers replace. The result plans the same cells as
    the same grid written out in full."""
    write(tmp_path, """\
        name: base
        dataset: {name: synthetic, params: {n_users: 50}}
        matrix: {target: [bpr, ncf], attack: [ptd]}
        training: {defaults: {dim: 16, epochs: 3}}
    """, name="base.yaml")
    child = write(tmp_path, """\
        extends: base.yaml
        name: child
        matrix: {attack: [ptq]}
        training: {defaults: {epochs: 5}}
    """, name="child.yaml")
    flat = write(tmp_path, """\
        name: child
        dataset: {name: synthetic, params: {n_users: 50}}
        matrix: {target: [bpr, ncf], attack: [ptq]}
        training: {defaults: {dim: 16, epochs: 5}}
    """, name="flat.yaml")
    composed, written = load_grid(child), load_grid(flat)
    assert [c.cell_hash(DIGEST) for c in expand(composed)] == [c.cell_hash(DIGEST) for c in expand(written)]
    assert composed.training.defaults == {"dim": 16, "epochs": 5}


def test_a_grid_that_extends_itself_or_a_missing_base_is_named(tmp_path):
    loop = write(tmp_path, "extends: loop.yaml\nname: loop\n", name="loop.yaml")
    with pytest.raises(GridError, match=r"loop.yaml: extends: .*loop.yaml extends itself"):
        load_grid(loop)
    orphan = write(tmp_path, "extends: nowhere.yaml\nname: orphan\n", name="orphan.yaml")
    with pytest.raises(GridError, match=r"orphan.yaml: extends: no such grid file .*nowhere.yaml"):
        load_grid(orphan)


def test_set_overrides_any_key_and_is_validated_like_the_file(tmp_path):
    path = write(tmp_path, """\
        name: demo
        seeds: [0, 1, 2]
        matrix: {target: [bpr], attack: [ptd, ptq]}
    """)
    grid = load_grid(path, ["seeds=[0]", "matrix.attack=[ptaq]", "training.defaults.dim=8"])
    assert grid.seeds == [0] and [a.name for a in grid.matrix.attack] == ["ptaq"]
    assert grid.training.defaults == {"dim": 8}
    with pytest.raises(GridError, match=r"grid.yaml: matrix.atack: unknown key"):
        load_grid(path, ["matrix.atack=[ptq]"])
    with pytest.raises(GridError, match=r"grid.yaml: --set 'seeds': expected KEY=VALUE"):
        load_grid(path, ["seeds"])
    with pytest.raises(GridError, match=r"grid.yaml: --set seeds.first: seeds is not a mapping"):
        load_grid(path, ["seeds.first=1"])


# -- each family reads its own axes and sections ------------------------------------------------

def test_an_axis_no_family_of_the_grid_reads_is_an_error_naming_it():
    raw = {"name": "g", "matrix": {"target": ["bpr"], "attack": ["zhang_mlp"], "known_share": [0.1, 0.5]}}
    message = errors_of(raw)
    assert message.startswith("grids/x.yaml: matrix.known_share: no attack family of this grid reads this axis")
    assert "membership reads target, clone, attack, defense, list_length" in message
    raw = {"name": "g", "matrix": {"target": ["bpr"], "attack": ["zhang_mlp"]},
           "include": [{"attack": "zhang_mlp", "query_budget": 10}]}
    assert "include[0].query_budget: no attack family of this grid reads this axis" in errors_of(raw)


def test_a_section_is_read_only_by_its_family():
    message = errors_of(minimal(membership={"vector_share": 0.2}))
    assert message == ("grids/x.yaml: membership: only membership attacks read this section, and the grid "
                       "runs stealing attacks")
    assert "grids/x.yaml: membership.nonmember:" in errors_of(
        {"name": "g", "matrix": {"target": ["bpr"], "attack": ["zhang_mlp"]}, "membership": {"nonmember": "all"}})
    assert "grids/x.yaml: sections: unknown key" in errors_of(minimal(sections={}))


def test_a_grid_mixing_families_runs_each_cell_once_with_the_axes_its_family_reads():
    raw = {"name": "g", "matrix": {"target": ["bpr"], "attack": ["ptd", "zhang_mlp"], "known_share": [0.1, 0.5]}}
    cells = expand(parse_grid(raw))
    by_family = {}
    for cell in cells:
        by_family.setdefault(cell.family, []).append(cell)
    assert len(by_family["stealing"]) == 2 and len(by_family["membership"]) == 1
    assert {c.threat.knowledge.known_share for c in by_family["stealing"]} == {0.1, 0.5}
    assert by_family["membership"][0].threat.sections == ("membership",) and not by_family["stealing"][0].threat.sections
