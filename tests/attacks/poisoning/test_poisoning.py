"""The poisoning family (fake-user injection): its axes, its budget, its attacks' effect on a
target trained on real data, its detector, and its measures."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from helpers import cli

from recsec.attacks.poisoning.base import Injection, PoisonBudget, PoisonBudgetExceeded, profiles_matrix
from recsec.defenses import create_defense
from recsec.harness import tasks
from recsec.harness.data import Interactions, load_dataset
from recsec.harness.errors import GridError
from recsec.attacks.poisoning.cells import InjectionOracle
from recsec.attacks.poisoning.metrics import target_metrics
from recsec.attacks.poisoning.split import choose_targets, leave_one_out
from recsec.harness.grid import expand, parse_grid
from recsec.harness.serving import TargetServer

BPR = {"name": "bpr", "dim": 32, "epochs": 20, "lr": 0.01, "batch_size": 2048}


def grid(**matrix) -> dict:
    spec = {"name": "poison-test", "dataset": {"name": "ml-100k", "min_user_interactions": 1,
                                               "min_item_interactions": 1},
            "matrix": {"target": [BPR], "attack": ["random"], "known_share": [1.0], **matrix},
            "metrics": {"k": [10, 50]}}
    return spec


@pytest.fixture(scope="module")
def ml100k(shared_data_dir) -> Interactions:
    return load_dataset("ml-100k", data_dir=shared_data_dir, min_user_interactions=1, min_item_interactions=1)


def run(cell, data):
    target = tasks.train_target(cell, data, "target")
    return tasks.run_cell(cell, data, target, "cell").metrics


# -- the grid: the family's own axes ---------------------------------------------------------------

def test_poisoning_axes_are_swept_tagged_and_checked():
    cells = expand(parse_grid(grid(fake_share=[0.01, 0.05], filler_items=[10])))
    assert [c.threat.fake_share for c in cells] == [0.01, 0.05]
    assert cells[0].axes()["filler_items"] == 10 and cells[0].axes()["target_stratum"] == "random"
    assert cells[0].cell_hash("d") != cells[1].cell_hash("d")

    with pytest.raises(GridError, match=r"<grid>: matrix.fake_share\[1\]: expected a number in \[0, 1\], got 2"):
        parse_grid(grid(fake_share=[0.01, 2]))
    with pytest.raises(GridError, match=r"matrix.target_stratum\[0\]: expected one of random, unpopular, popular"):
        parse_grid(grid(target_stratum=["obscure"]))
    with pytest.raises(GridError, match=r"matrix.fake_users: unknown key; axes: .*fake_share"):
        parse_grid(grid(fake_users=[5]))
    stealing = grid(fake_share=[0.01])
    stealing["matrix"]["attack"] = ["ptd"]
    with pytest.raises(GridError, match="matrix.fake_share: no attack family of this grid reads this axis: only poisoning attacks do"):
        parse_grid(stealing)


def test_families_without_own_axes_keep_their_cell_hashes():
    """Adding family axes to the grid changed no other family's identity (cached results stay valid)."""
    spec = grid()
    spec["matrix"]["attack"] = ["ptd"]
    cell = expand(parse_grid(spec))[0]
    assert "family_axes" not in cell.normalized()


def test_batched_retrainings_change_how_a_cell_runs_not_what_it_is(ml100k):
    """Batched (the default) or one by one, a cell's retrainings end with the same weights, so the
    cell keeps its hash and gives the same numbers, to the bit."""
    spec = grid(fake_share=[0.02], filler_items=[20])
    # DL-Attack's NeuMF (negatives drawn once), shrunk: what has a batched trainer
    spec["matrix"]["target"] = [{"name": "ncf", "dim": 4, "mlp_dim": 8, "layers": [8, 4], "epochs": 2,
                                 "batch_size": 4096, "negatives": 1, "linear_init": "torch", "negatives_drawn": "once"}]
    spec["poisoning"] = {"split": "leave_one_out", "selection": "sampled_hr", "retrainings": 3}
    one_by_one = {**spec, "poisoning": {**spec["poisoning"], "batch_retrainings": False}}
    (batched,), (lone,) = expand(parse_grid(spec)), expand(parse_grid(one_by_one))
    assert batched.threat.poisoning.batch_retrainings and not lone.threat.poisoning.batch_retrainings
    assert batched.cell_hash("d") == lone.cell_hash("d")
    measured = lambda metrics: {name: value for name, value in metrics.items()  # noqa: E731
                                if not name.endswith("_seconds") and name != "peak_rss_mb"}  # not its costs
    assert measured(run(batched, ml100k)) == measured(run(lone, ml100k))


# -- the budget ------------------------------------------------------------------------------------

def test_the_oracle_enforces_the_budget():
    targets = np.array([3])
    oracle = InjectionOracle(lambda users, k: np.zeros((len(users), k), dtype=np.int64), None, 5,
                             budget=PoisonBudget(fake_users=2, filler_items=2), targets=targets)
    oracle.inject(profiles_matrix([np.array([3, 0, 1])], 10))
    with pytest.raises(PoisonBudgetExceeded, match="rates 3 filler items; the budget allows 2"):
        oracle.inject(profiles_matrix([np.array([3, 0, 1, 2])], 10))
    oracle.inject(profiles_matrix([np.array([3, 4])], 10))
    with pytest.raises(PoisonBudgetExceeded, match="1 more fake users would exceed the budget of 2"):
        oracle.inject(profiles_matrix([np.array([3])], 10))
    assert oracle.counts() == {"queries": 0, "items_returned": 0, "fake_users": 2, "injected_interactions": 5}


def test_grading_refuses_fake_users_the_oracle_never_took(ml100k):
    """An attack cannot inject beyond its budget by returning profiles it never sent."""
    cell = expand(parse_grid(grid(fake_share=[0.01])))[0]
    target = tasks.train_target(cell, ml100k, "target")
    server = TargetServer(ml100k, target)
    view = server.open(cell, "s")
    rows = [np.concatenate([view.target_items, [0]]) for _ in range(view.budget.fake_users + 1)]
    outcome = tasks.AttackOutcome(Injection(profiles_matrix(rows, view.n_items)), 0.0, 0.0)
    with pytest.raises(PoisonBudgetExceeded):
        tasks.grade_cell(cell, ml100k, target, view, outcome, server.close("s"), "c")


# -- the attacks, on real data ---------------------------------------------------------------------

def test_injected_profiles_raise_the_target_items_over_the_clean_target(ml100k):
    cells = expand(parse_grid(grid(attack=["no_poison", "random", "popular"], fake_share=[0.05],
                                   target_items=[3], target_stratum=["unpopular"])))
    measured = {c.attack.name: run(c, ml100k) for c in cells}
    clean = measured["no_poison"]
    # The clean baseline retrained with nothing injected is the clean target itself.
    assert clean["target_hr_gain_at_50"] == 0 and clean["fake_users"] == 0
    for name in ("random", "popular"):
        m = measured[name]
        assert m["fake_users"] == round(0.05 * ml100k.n_users) and m["injected_interactions"] == m["fake_users"] * 33
    # Fake users who rate the targets beside popular items pull them toward every real user's
    # taste: the targets climb far up the rankings. (Random fillers barely move a BPR-MF: the
    # targets join the fake users' random items, as the shilling literature reports.)
    popular = measured["popular"]
    assert popular["target_rank"] < 0.8 * popular["target_rank_clean"]
    assert popular["target_hr_at_50"] > popular["target_hr_at_50_clean"]
    assert popular["target_hr_gain_at_50"] > measured["random"]["target_hr_gain_at_50"]


def test_dl_attack_spreads_its_fillers_by_decaying_chosen_items():
    """DL-Attack's filler rule (its code's `prob`): the top-n items by surrogate score times a
    weight, targets never; a chosen item's weight shrinks, and all reset once every non-target
    item's is below 1."""
    import torch

    from recsec.attacks.poisoning.dlattack import DLAttack, DLAttackConfig

    class Scores:  # a surrogate whose fake user scores items 0..5 by descending logit
        device = torch.device("cpu")

        def score(self, users):
            return torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])

    attack = DLAttack(DLAttackConfig(decay=0.5))
    weights = np.ones(6)
    targets = np.array([0])
    first = attack._fillers(Scores(), 0, targets, weights, 2)
    assert first.tolist() == [1, 2] and weights.tolist() == [1, 0.5, 0.5, 1, 1, 1]
    # sigmoid(4) * 0.5 < sigmoid(2): the next fake user takes the next items
    assert attack._fillers(Scores(), 0, targets, weights, 2).tolist() == [3, 4]
    attack._fillers(Scores(), 0, targets, weights, 1)  # item 5's weight drops too: every one is < 1
    assert weights.tolist() == [1] * 6


def test_dl_attack_injects_its_budget_through_the_oracle(tmp_path):
    params = {"n_users": 120, "n_items": 80, "n_interactions": 2400}
    data = load_dataset("synthetic", data_dir=tmp_path, cache_dir=tmp_path, params=params)
    spec = {"name": "dl-budget", "dataset": {"name": "synthetic", "params": params},
            "matrix": {"target": [{"name": "ncf", "dim": 4, "layers": [8], "epochs": 1, "batch_size": 512}],
                       "attack": [{"name": "dl_attack", "rounds": 1,
                                   "surrogate": {"dim": 4, "mlp_dim": 4, "layers": [8], "epochs": 1,
                                                 "batch_size": 512}}],
                       "known_share": [1.0], "fake_share": [0.03], "filler_items": [5], "target_items": [2]}}
    cell = expand(parse_grid(spec))[0]
    m = run(cell, data)
    assert m["fake_users"] == round(0.03 * data.n_users) == 4
    assert m["injected_interactions"] == 4 * (5 + 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_revadv_lifts_the_targets_more_than_random_fillers_at_the_same_budget(ml100k, seed):
    """The optimization-based attack beats the random baseline with the same fake users and
    filler budget: its fillers are chosen by differentiating the target items' softmax loss
    through a surrogate's training."""
    spec = grid(attack=["random", {"name": "revadv", "adv_epochs": 3}], fake_share=[0.03], target_items=[3],
                target_stratum=["unpopular"])
    spec["seeds"] = [seed]
    random, revadv = (run(c, ml100k) for c in expand(parse_grid(spec)))
    assert revadv["fake_users"] == random["fake_users"] == round(0.03 * ml100k.n_users)
    assert revadv["target_rank"] < 0.85 * random["target_rank"], (revadv["target_rank"], random["target_rank"])


def test_revadv_differentiable_adam_steps_as_torch_adam_and_projects_within_the_budget():
    import torch

    from recsec.attacks.poisoning.revadv import DifferentiableAdam, RevAdv, RevAdvConfig

    start = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    reference = start.clone().requires_grad_()
    torch_adam = torch.optim.Adam([reference], lr=0.1, weight_decay=1e-2)
    ours = DifferentiableAdam([start.clone().requires_grad_()], lr=0.1, weight_decay=1e-2)
    for step in range(4):
        torch_adam.zero_grad()
        (reference ** 3).sum().backward()
        torch_adam.step()
        ours.step((ours.params[0] ** 3).sum(), differentiable=step >= 2)
    torch.testing.assert_close(ours.params[0], reference.detach())
    assert ours.params[0].grad_fn is not None  # the differentiable steps stay in the graph

    values = torch.tensor([[0.9, 0.2, 0.01, 0.7, 0.6], [0.04, 0.0, 0.03, 0.5, 0.02]])
    targets = torch.tensor([3])
    projected = RevAdv(RevAdvConfig())._project(values, targets, filler_budget=2)
    # above the threshold, at most two fillers (largest first), the target kept where it was above
    assert projected.tolist() == [[1, 0, 0, 1, 1], [0, 0, 0, 1, 0]]
    unbounded = RevAdv(RevAdvConfig(projection="threshold"))._project(values, targets, filler_budget=2)
    assert unbounded.tolist() == [[1, 1, 0, 1, 1], [0, 0, 0, 1, 0]]


def test_a_warm_retraining_continues_from_the_clean_target():
    from recsec import models

    rng = np.random.default_rng(0)
    real = sp.random(50, 30, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    real.data[:] = 1
    clean = models.create_model("bpr", 50, 30, dim=8, epochs=5, batch_size=64).fit(real, seed=0)
    poisoned = sp.vstack([real, profiles_matrix([np.array([1, 2, 3])] * 4, 30)], format="csr")
    warm = models.create_model("bpr", 54, 30, dim=8, lr=1e-9, batch_size=64)
    warm.warm_fit(poisoned, clean, epochs=1, seed=3)
    np.testing.assert_allclose(warm.user_factors[:50].detach(), clean.user_factors.detach(), atol=1e-6)
    np.testing.assert_allclose(warm.item_factors.detach(), clean.item_factors.detach(), atol=1e-6)
    assert 0.05 < float(warm.user_factors[50:].detach().std()) < 0.2  # the fake users' rows are drawn afresh


def test_warm_retraining_is_refused_where_it_cannot_continue_the_training():
    spec = grid(defense=["none", {"name": "apr"}])
    spec["matrix"]["target"] = [BPR, {"name": "lmf"}]
    spec["poisoning"] = {"retraining": "warm"}
    with pytest.raises(GridError) as caught:
        parse_grid(spec)
    # (plugins may register more models that can continue training: the list is not pinned)
    assert re.search(r"poisoning.retraining: warm needs targets that can continue training \([^)]*\bbpr\b[^)]*\), "
                     r"not matrix.target\[1\] lmf", str(caught.value))
    assert "warm cannot continue apr's own training (matrix.defense[1])" in str(caught.value)


# -- the detector ----------------------------------------------------------------------------------

def test_pca_select_finds_random_filler_profiles_far_above_chance(ml100k):
    train = leave_one_out(ml100k, 0).train
    rng = np.random.default_rng(0)
    n_fake = 30
    fakes = profiles_matrix([np.r_[7, rng.choice(np.arange(8, train.shape[1]), 30, replace=False)]
                             for _ in range(n_fake)], train.shape[1])
    poisoned = sp.vstack([train, fakes], format="csr")
    share = n_fake / poisoned.shape[0]
    flagged = create_defense("pca_select", drop_share=share).flag(poisoned)
    recall = flagged[train.shape[0]:].mean()
    assert flagged.sum() == round(share * poisoned.shape[0])
    assert recall > 10 * share, f"caught {recall:.2f} of the fake users; chance is {share:.2f}"


def test_apr_holds_the_injected_targets_lower_at_no_cost_in_recall(ml100k):
    """Adversarial training (APR) smooths BPR-MF's embeddings: the same fake users lift the
    targets less, and the clean target ranks as well as plain BPR-MF."""
    cells = expand(parse_grid(grid(attack=["popular"], defense=["none", {"name": "apr", "epochs": 20}],
                                   fake_share=[0.05], target_items=[3], target_stratum=["unpopular"])))
    plain, apr = (run(c, ml100k) for c in cells)
    assert apr["target_rank"] > 1.1 * plain["target_rank"]
    assert apr["target_hr_gain_at_50"] < plain["target_hr_gain_at_50"]
    assert apr["recall_at_10"] > 0.9 * plain["recall_at_10"]


def test_degsim_finds_look_alike_profiles_far_above_chance(ml100k):
    """Fake users of one recipe (the targets and the same popular fillers) resemble each other
    more than real users do."""
    train = leave_one_out(ml100k, 0).train
    popular = np.argsort(-np.asarray(train.sum(axis=0)).ravel(), kind="stable")[:40]
    rng = np.random.default_rng(1)
    n_fake = 30
    fakes = profiles_matrix([np.r_[1500, rng.choice(popular, 30, replace=False)] for _ in range(n_fake)],
                            train.shape[1])
    poisoned = sp.vstack([train, fakes], format="csr")
    share = n_fake / poisoned.shape[0]
    flagged = create_defense("degsim", drop_share=share).flag(poisoned)
    assert flagged[train.shape[0]:].mean() > 10 * share


def test_vat_perturbs_the_users_the_model_fits_best_most():
    import torch

    from recsec.defenses.poisoning.vat import user_vulnerability

    # user 0: two samples, summed loss 2; user 1: one, loss 4; their mean 3
    g = user_vulnerability(torch.tensor([0, 0, 1]), torch.tensor([1.0, 1.0, 4.0]), 2.0)
    expected = [2 * torch.sigmoid(torch.tensor(0.5)), 2 * torch.sigmoid(torch.tensor(0.5)),
                2 * torch.sigmoid(torch.tensor(-0.25))]
    torch.testing.assert_close(g, torch.stack(expected))


def test_vat_without_its_adversarial_term_is_the_targets_own_training():
    """VAT replaces the target's training but keeps its schedule, sampling and L2: with the
    adversarial weight at 0 it trains the same model as BPR-MF's own fit."""
    from recsec import models

    rng = np.random.default_rng(0)
    train = sp.random(60, 40, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    train.data[:] = 1
    own = models.create_model("bpr", 60, 40, dim=8, epochs=6, batch_size=64, reg=0.01).fit(train, seed=4)
    vat = create_defense("vat", adv_reg=0.0).fit(models.create_model("bpr", 60, 40, dim=8, epochs=6, batch_size=64,
                                                                     reg=0.01), train, seed=4)
    np.testing.assert_allclose(vat.embedding.detach().numpy(), own.embedding.detach().numpy(), atol=1e-5)


def test_vat_holds_the_injected_targets_lower(ml100k):
    cells = expand(parse_grid(grid(attack=["popular"], defense=["none", "vat"], fake_share=[0.05], target_items=[3],
                                   target_stratum=["unpopular"])))
    plain, vat = (run(c, ml100k) for c in cells)
    assert vat["target_hr_gain_at_50"] < plain["target_hr_gain_at_50"]
    assert vat["target_exposure_at_50"] < plain["target_exposure_at_50"]


# -- the split and the measures --------------------------------------------------------------------

def test_leave_one_out_holds_out_each_users_latest_item():
    matrix = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32))
    # Timestamps follow the row's item order: user 0 rated item 2 first and item 0 last; user 1
    # rated item 1 before item 3.
    data = Interactions(matrix, timestamps=np.array([30, 20, 10, 5, 9, 1]))
    split = leave_one_out(data, 0)
    assert split.heldout_item.tolist() == [0, 3, -1]  # a user with one item keeps it
    assert split.train.toarray().tolist() == [[0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert split.test.nnz == 2


def test_target_hit_ratio_counts_only_users_who_had_not_trained_on_the_target():
    # 4 users x 1 target: user 3 trained on it (rank 0), users 0 and 1 have it in their top 10.
    ranks = np.array([[1], [10], [11], [0]])
    m = target_metrics(ranks, np.full(4, 100), [10])
    assert m["target_hr_at_10"] == pytest.approx(2 / 3)  # over the 3 users who had not rated it
    assert m["target_hr_all_at_10"] == pytest.approx(2 / 4)  # DL-Attack's code: over every real user
    assert m["target_exposure_at_10"] == pytest.approx(2 / 40)
    assert m["target_rank"] == pytest.approx(22 / 3)


def test_target_strata_are_drawn_from_their_popularity_third():
    train = sp.csr_matrix(np.triu(np.ones((30, 30), dtype=np.float32)))  # item j has j + 1 users
    assert choose_targets(train, 3, "unpopular", 0).max() < 10
    assert choose_targets(train, 3, "popular", 0).min() >= 20
    assert len(set(choose_targets(train, 5, "random", 1))) == 5


# -- through the CLI -------------------------------------------------------------------------------

def test_a_poisoning_grid_runs_into_the_report_and_the_leaderboard(tmp_path):
    import csv
    import io

    import yaml
    spec = {"name": "poison-e2e",
            "dataset": {"name": "synthetic", "params": {"n_users": 300, "n_items": 200, "n_interactions": 9000}},
            "seeds": [0, 1],
            "matrix": {"target": [{"name": "bpr", "epochs": 5, "dim": 16, "lr": 0.01}],
                       "attack": ["no_poison", "popular"],
                       "defense": ["none", {"name": "pca_select", "drop_share": 0.05}],
                       "known_share": [1.0], "fake_share": [0.05], "filler_items": [10], "target_items": [2]},
            "metrics": {"k": [10, 20]}}
    grid_file = tmp_path / "poison.yaml"
    grid_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    run_ = cli.recsec("run", str(grid_file), "--num-cpus", "2", cwd=tmp_path)
    assert run_.returncode == 0, run_.stdout + run_.stderr
    assert "8 cells finished, 0 failed" in run_.stdout
    assert "target_hr_gain_at_20" in run_.stdout  # the summary, at the middle K measured

    report = cli.recsec("report", "--grid", str(grid_file), "--format", "csv", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert {"target_hr_gain_at_20", "fake_users"} <= set(rows[0])
    popular = [r for r in rows if r["attack"] == "popular"]
    assert {float(r["fake_users"]) for r in popular} == {15.0}  # 5% of 300 real users, counted

    board = cli.recsec("leaderboard", "--format", "csv", "--k", "10", cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    entries = [r for r in csv.DictReader(io.StringIO(board.stdout)) if r["family"] == "poisoning"]
    assert {(r["attack"], r["defense"].split("(")[0]) for r in entries} == {
        (a, d) for a in ("no_poison", "popular") for d in ("none", "pca_select")}
