"""Membership inference: metrics and features on hand-made cases (expected values worked out in
comments), partitions, ItemCF, the served lists, popularity randomization, and the attacks
against a BPR-MF target on real ML-100k."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsec import defenses
from recsec import models
from recsec.attacks.membership import (DLMIA, DLMIAConfig, ItemVectors, PartFeatures, ZhangKMeans, ZhangKMeansConfig,
                                ZhangMLP, difference_vectors, factorize_items, part_features, run_attack,
                                serve_lists)
from recsec.attacks.membership.base import single_threaded
from recsec.attacks.membership.features import rank_weights
from recsec.attacks.membership.recommendations import published_lists
from recsec.attacks.oracle import ServingContext
from recsec.harness.data import load_dataset
from recsec.harness.errors import DataError, GridError
from recsec.harness.grid import expand, parse_grid
from recsec.attacks.membership.cells import partition_for
from recsec.attacks.membership.metrics import membership_metrics
from recsec.attacks.membership.splits import load_dlmia_split, membership_partition
from recsec.attacks.membership.cells import unpack_csr
from recsec.harness.tasks import run_cell, train_auxiliary, train_target
from recsec.harness.metrics import (accuracy, agreement_at_k, balanced_accuracy, precision, recall, roc_auc,
                             tpr_at_fpr)
from recsec.models.itemcf import top_neighbours


def csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([i for r in rows for i in r], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(rows), n_items))


# --------------------------------------------------------------------------- metrics


def test_roc_auc_counts_ties_as_half():
    # members score 0.9, 0.8; non-members 0.8, 0.3, 0.8. Of the 6 (member, non-member) pairs,
    # 0.9 wins all 3; 0.8 beats 0.3 and ties twice: (3 + 1 + 0.5 + 0.5) / 6 = 5/6.
    assert roc_auc([0.9, 0.8, 0.8, 0.3, 0.8], [1, 1, 0, 0, 0]) == pytest.approx(5 / 6)
    assert roc_auc([0.5, 0.5, 0.5], [1, 0, 1]) == 0.5  # all tied: chance


def test_member_is_the_positive_class():
    labels = np.array([1, 0, 1, 0, 0, 1])
    perfect = labels * 2.0 - 1
    assert roc_auc(perfect, labels) == 1.0
    assert roc_auc(-perfect, labels) == 0.0
    assert tpr_at_fpr(perfect, labels, 0.0) == 1.0
    pred = (perfect > 0).astype(int)
    assert balanced_accuracy(pred, labels) == 1.0 and balanced_accuracy(1 - pred, labels) == 0.0


def test_decision_metrics():
    # TP = 2 (rows 0, 1), FP = 1 (row 2), TN = 1 (row 3), FN = 0: TPR 1, FPR 1/2.
    pred, labels = [1, 1, 1, 0], [1, 1, 0, 0]
    assert accuracy(pred, labels) == 0.75
    assert precision(pred, labels) == pytest.approx(2 / 3)
    assert recall(pred, labels) == 1.0
    assert balanced_accuracy(pred, labels) == 0.75  # (1 + 1 - 1/2) / 2


def test_tpr_at_fpr_never_splits_a_tie():
    # Three members (0.9, 0.7, 0.6). Accepting down to 0.6 costs one false positive (0.8) of 3.
    scores, labels = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 0, 1, 1, 0, 0]
    assert tpr_at_fpr(scores, labels, 0.0) == pytest.approx(1 / 3)
    assert tpr_at_fpr(scores, labels, 1 / 3) == 1.0
    # 0.8 is shared by a member and a non-member: at FPR 0 only 0.9 can be accepted.
    assert tpr_at_fpr([0.9, 0.8, 0.8], [1, 1, 0], 0.0) == 0.5


# --------------------------------------------------------------------------- features


def test_difference_vectors_by_hand():
    # Items 0..3 with vectors (1,0), (0,1), (2,2); item 3 was never seen when vectorizing.
    items = ItemVectors(np.array([[1, 0], [0, 1], [2, 2], [0, 0]], np.float32),
                        np.array([True, True, True, False]))
    histories = csr([[0, 1], [1, 3]], 4)
    lists = np.array([[2, 0], [3, 1]])
    # User 0: history centre (0.5, 0.5). Uniform list centre (1.5, 1) -> (-1, -0.5). Rank
    # weights (2/3, 1/3): centre 2/3 (2,2) + 1/3 (1,0) = (5/3, 4/3) -> (-7/6, -5/6).
    # User 1: item 3 is left out of both centres: history (0,1), list (0,1) -> (0, 0) either way.
    np.testing.assert_allclose(difference_vectors(items, histories, lists, "uniform"),
                               [[-1, -0.5], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(difference_vectors(items, histories, lists, "rank"),
                               [[-7 / 6, -5 / 6], [0, 0]], atol=1e-6)


def test_rank_weights_are_the_papers():
    w = rank_weights(100)
    assert w.sum() == pytest.approx(1)
    assert w[0] == pytest.approx(100 / 5050) and w[-1] == pytest.approx(1 / 5050)


def test_factorize_items_is_seeded_and_reconstructs():
    rng = np.random.default_rng(0)
    # A rank-2 binary structure: two user groups, each with its own block of items.
    x = sp.csr_matrix(np.kron(np.eye(2), np.ones((10, 6))) * (rng.random((20, 12)) < 0.9))
    x = sp.hstack([x, sp.csr_matrix((20, 1))]).tocsr()  # item 12: never seen
    a, b = factorize_items(x, 2, seed=1), factorize_items(x, 2, seed=1)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert a.vectors.shape == (13, 2) and not a.known[12] and a.known[:12].all()
    assert not a.vectors[12].any()
    # Items of the same block have near-parallel vectors; of different blocks, near-orthogonal.
    v = a.vectors[:12] / np.linalg.norm(a.vectors[:12], axis=1, keepdims=True)
    assert (v[:6] @ v[:6].T).min() > 0.95 and abs(v[:6] @ v[6:].T).max() < 0.05
    # More dimensions than the data's rank (20 users): the extra columns are zero.
    wide = factorize_items(x, 30, seed=1).vectors
    assert wide.shape == (13, 30) and not wide[:, 20:].any()


# --------------------------------------------------------------------------- partitions


def test_membership_partition_is_seeded_disjoint_and_complete():
    p = membership_partition(943, seed=0)
    parts = [p.vector, p.shadow_members, p.shadow_nonmembers, p.target_members, p.target_nonmembers]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(943))
    assert [len(x) for x in parts] == [314, 157, 157, 158, 157]
    assert np.array_equal(membership_partition(943, seed=0).target_members, p.target_members)
    assert not np.array_equal(membership_partition(943, seed=1).target_members, p.target_members)
    users, labels = p.labelled("target")
    np.testing.assert_array_equal(users[labels == 1], p.target_members)
    with pytest.raises(ValueError, match="vector_share"):
        membership_partition(10, seed=0, vector_share=0.5, shadow_share=0.5)


def test_training_matrix_keeps_only_the_members_rows():
    matrix = sp.random(30, 8, density=0.5, format="csr", random_state=0, dtype=np.float32)
    p = membership_partition(30, seed=0)
    train = p.training_matrix(matrix, "shadow")
    assert train.shape == matrix.shape
    rows = np.flatnonzero(np.diff(train.indptr))
    assert set(rows) <= set(p.shadow_members)
    assert (train[p.shadow_members] != matrix[p.shadow_members]).nnz == 0


def test_published_dlmia_splits(shared_data_dir):
    beauty = load_dlmia_split("beauty", shared_data_dir)
    p = beauty.partition
    # 9137 shadow sessions: members are ids < round(9137 / 2) = 4568; 9102 target: 4551.
    assert (len(p.shadow_members), len(p.shadow_nonmembers)) == (4568, 4569)
    assert (len(p.target_members), len(p.target_nonmembers)) == (4551, 4551)
    assert len(p.vector) == 0 and beauty.unaligned_vector.shape == (9262, 17087)
    assert beauty.interactions.n_users == 9137 + 9102 and beauty.interactions.timestamps is not None
    music = load_dlmia_split("digital-music", shared_data_dir)
    # 2635 users per part, members ids < 2635 // 2 = 1317; target rows follow the shadow rows.
    assert len(music.partition.shadow_members) == len(music.partition.target_members) == 1317
    np.testing.assert_array_equal(music.partition.target_members, np.arange(2635, 2635 + 1317))


# --------------------------------------------------------------------------- ItemCF


def test_itemcf_by_hand():
    # Columns: item 0 {u0, u1}, item 1 {u0, u1}, item 2 {u1, u2}, item 3 {u2}. Cosine:
    # (0,1) = 2/2 = 1, (0,2) = (1,2) = 1/2, (2,3) = 1/sqrt(2), (0,3) = (1,3) = 0.
    train = csr([[0, 1], [0, 1, 2], [2, 3]], 4)
    ids, sims = top_neighbours(train, 1)
    np.testing.assert_array_equal(ids[:, 0].numpy(), [1, 0, 3, 2])
    np.testing.assert_allclose(sims[:, 0].numpy(), [1, 1, 2**-0.5, 2**-0.5], atol=1e-6)
    model = models.create_model("itemcf", 3, 4, neighbours=3).fit(train)
    # User 2 (items 2, 3): item 2 gives 0.5, 0.5, -, 1/sqrt(2); item 3 gives 1/sqrt(2) to item 2.
    np.testing.assert_allclose(model.score(torch.tensor([2])).numpy()[0], [0.5, 0.5, 2**-0.5, 2**-0.5], atol=1e-6)
    # A history scores the same whether the user was trained on or folded in.
    torch.testing.assert_close(model.score_histories(train), model.score(torch.arange(3)))


# --------------------------------------------------------------------------- popularity randomization


@pytest.fixture()
def serving():
    history = csr([[0, 1], [2], [2, 3, 4], []], 12)
    popularity = np.arange(12, 0, -1).astype(float)  # item 0 most popular, then 1, 2, ...
    return ServingContext(history, popularity, np.array([True, False, False, True]))


def test_popularity_randomization_draws_unseen_pool_items_for_nonmembers(serving):
    lists = np.array([[9, 10, 11], [9, 10, 11], [9, 10, 11], [9, 10, 11]])
    users = np.arange(4)
    defense = defenses.create_defense("popularity_randomization", pool=8)
    for seed in range(20):
        served = defense(lists, users, serving, np.random.default_rng(seed))
        np.testing.assert_array_equal(served[[0, 3]], lists[[0, 3]])  # members keep their lists
        for u in (1, 2):
            items = set(served[u].tolist())
            assert len(items) == 3 and items <= set(range(8))
            assert items.isdisjoint(serving.history[u].indices.tolist())
    everyone = defenses.create_defense("popularity_randomization", pool=8, scope="all")
    served = everyone(lists, users, serving, np.random.default_rng(0))
    assert (served < 8).all()


def test_popularity_randomization_needs_members_and_a_big_enough_pool(serving):
    lists = np.zeros((2, 3), dtype=np.int64)
    plain = ServingContext(serving.history, serving.item_popularity)
    with pytest.raises(ValueError, match="is_member"):
        defenses.create_defense("popularity_randomization")(lists, np.arange(2), plain, np.random.default_rng(0))
    with pytest.raises(ValueError, match="only 2 unseen"):  # user 2 has seen 3 of the pool's 5
        defenses.create_defense("popularity_randomization", pool=5)(lists, np.array([1, 2]), serving,
                                                                    np.random.default_rng(0))


# --------------------------------------------------------------------------- k-means


def test_kmeans_orientation_rules():
    rng = np.random.default_rng(0)
    # Members' lists sit near their histories: small difference vectors, around the origin.
    members, nonmembers = rng.normal(0, 0.3, (40, 5)), rng.normal(3, 0.3, (40, 5))
    x, labels = np.vstack([members, nonmembers]), np.r_[np.ones(40), np.zeros(40)]
    for orient in ("norm", "shadow"):
        attack = ZhangKMeans(ZhangKMeansConfig(orient=orient)).fit(x, labels, x, seed=0)
        assert roc_auc(attack.score(x), labels) == 1.0
        np.testing.assert_array_equal(attack.score(x) >= attack.threshold_, labels == 1)


# --------------------------------------------------------------------------- on real data

BPR = dict(dim=32, epochs=40, lr=0.01, batch_size=1024, reg=0.01)  # trains in ~2 s here


@pytest.fixture(scope="module")
def experiment(shared_data_dir, tmp_path_factory):
    """ML-100k split a third each; BPR-MF shadow and target; the attacker's view of both parts."""
    data = load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path_factory.mktemp("cache"))
    matrix, partition = data.matrix, membership_partition(data.n_users, seed=0)
    items = factorize_items(matrix[partition.vector], dim=100, seed=0)
    recommenders, features = {}, {}
    for i, part in enumerate(("shadow", "target")):
        with single_threaded():  # a tiny model: one thread is faster, much faster on a busy machine
            recommenders[part] = models.create_model("bpr", data.n_users, data.n_items, **BPR).fit(
                partition.training_matrix(matrix, part), seed=i)
        served = serve_lists(recommenders[part], matrix, *partition.labelled(part))
        features[part] = part_features(items, matrix, served)
    zhang = ZhangMLP().fit(features["shadow"].vectors, features["shadow"].labels, None, seed=0)
    return dict(matrix=matrix, partition=partition, items=items, recommenders=recommenders,
                features=features, zhang=zhang)


def test_served_lists(experiment):
    matrix, target = experiment["matrix"], experiment["recommenders"]["target"]
    users, labels = experiment["partition"].labelled("target")
    served = serve_lists(target, matrix, users, labels, k=10)
    assert served.nonmember_option == "popular" and served.lists.shape == (len(users), 10)
    members = users[labels == 1]
    np.testing.assert_array_equal(served.lists[labels == 1], target.recommend(members, 10, exclude=matrix))
    popularity = np.asarray(matrix[members].sum(axis=0)).ravel()
    for row in np.flatnonzero(labels == 0):
        listed, seen = served.lists[row], matrix[users[row]].indices
        assert set(listed).isdisjoint(seen)
        # The most popular unseen items (ties broken either way): nothing left out is more popular.
        left_out = np.setdiff1d(np.arange(matrix.shape[1]), np.r_[listed, seen])
        assert popularity[left_out].max() <= popularity[listed].min()


def test_fold_in_serves_a_member_nearly_as_if_trained(experiment):
    # Folding members in (ignoring their trained vectors) should reproduce most of their lists.
    matrix, target = experiment["matrix"], experiment["recommenders"]["target"]
    members = experiment["partition"].target_members
    as_members = serve_lists(target, matrix, members, np.ones(len(members)))
    folded = serve_lists(target, matrix, members, np.zeros(len(members)), nonmember="fold_in")
    assert folded.nonmember_option == "fold_in"
    assert agreement_at_k(as_members.lists, folded.lists, 100) > 0.7


def test_attacks_beat_chance_on_bpr(experiment):
    shadow, target = experiment["features"]["shadow"], experiment["features"]["target"]
    zhang = experiment["zhang"].score(target.vectors)
    # Measured 0.92 / 0.95 (Zhang) and 0.92 / 0.94 (DL-MIA) over seeds 0 and 1.
    assert roc_auc(zhang, target.labels) > 0.75
    result = run_attack(DLMIA(), shadow, target, seed=0)
    assert membership_metrics(result.scores, result.predictions, result.labels)["roc_auc"] > 0.75


def test_same_seed_same_attack(experiment):
    shadow, target = experiment["features"]["shadow"], experiment["features"]["target"]
    again = ZhangMLP().fit(shadow.vectors, shadow.labels, None, seed=0)
    np.testing.assert_array_equal(again.score(target.vectors), experiment["zhang"].score(target.vectors))


def test_popularity_randomization_lowers_the_attacks_auc(experiment):
    """The published protocol: the target serves non-members randomized lists; the attacker's
    own shadow recommender does not, so the attack model is the undefended one."""
    matrix, items, zhang = experiment["matrix"], experiment["items"], experiment["zhang"]
    users, labels = experiment["partition"].labelled("target")
    defended = serve_lists(experiment["recommenders"]["target"], matrix, users, labels,
                           defense=defenses.create_defense("popularity_randomization"),
                           rng=np.random.default_rng(0))
    before = roc_auc(zhang.score(experiment["features"]["target"].vectors), labels)
    scores = zhang.score(part_features(items, matrix, defended).vectors)
    after = roc_auc(scores, labels)
    # Measured 0.92 -> 0.26 and 0.95 -> 0.27 (seeds 0, 1): decisions fall to chance (balanced
    # accuracy ~0.45). An AUC far below 0.5 still separates the users, though, so an attacker who
    # knows the defense and serves its shadow the same way recovers (~0.9).
    assert after < before - 0.3
    assert balanced_accuracy((scores >= zhang.threshold_).astype(int), labels) < 0.6


# --------------------------------------------------------------------------- as grid cells


def mia_grid(**overrides) -> dict:
    grid = {
        "name": "test-mia",
        "dataset": {"name": "ml-100k"},
        "seeds": [0],
        "matrix": {
            "target": ["itemcf"],
            "attack": [{"name": "zhang_mlp", "epochs": 30, "protocol": "deployed"},
                       {"name": "zhang_mlp", "epochs": 30, "knows_defense": True, "protocol": "deployed"}],
            "defense": ["none", "popularity_randomization"],
            "list_length": [100],
        },
        "metrics": {"k": [10, 100]},
    }
    grid.update(overrides)
    return grid


def test_membership_grids_reject_mismatched_defenses_and_shares():
    stealing = mia_grid(matrix={"target": ["bpr"], "attack": ["ptd"], "defense": ["popularity_randomization"]})
    with pytest.raises(GridError, match="membership attacks only"):
        parse_grid(stealing, source="g.yaml")
    gro = mia_grid(matrix={"target": ["sasrec"], "attack": ["zhang_mlp"], "defense": ["gro"]})
    with pytest.raises(GridError, match="output defenses only"):
        parse_grid(gro, source="g.yaml")
    with pytest.raises(GridError, match=r"g.yaml: membership: .*vector_share \+ shadow_share must be < 1"):
        parse_grid(mia_grid(membership={"vector_share": 0.5, "shadow_share": 0.5}), source="g.yaml")


def test_a_shadow_dataset_changes_the_shadow_model_not_the_target():
    same = expand(parse_grid(mia_grid()))[0]
    crossed = expand(parse_grid(mia_grid(membership={"shadow_dataset": {"name": "synthetic"}})))[0]
    assert same.auxiliary_dataset.name == "ml-100k" and crossed.auxiliary_dataset.name == "synthetic"
    assert same.target_hash("d") == crossed.target_hash("d")
    assert same.auxiliary_hash("d") != crossed.auxiliary_hash("d")
    assert same.cell_hash("d") != crossed.cell_hash("d")


def test_membership_cells_detect_members_and_the_defense_hides_them(shared_data_dir, tmp_path):
    """Through the task functions (no Ray): ItemCF target and shadow on ML-100k. The attack finds
    members well above chance; randomizing non-members' lists breaks the undefended attack model
    and costs members nothing; an attacker who serves its shadow the same way recovers."""
    data = load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path)
    digest = data.meta["digest"]
    records, got = {}, {}
    for cell in expand(parse_grid(mia_grid())):
        target = records.setdefault(cell.target_hash(digest), train_target(cell, data, cell.target_hash(digest)))
        shadow = records.setdefault(cell.auxiliary_hash(digest),
                                    train_auxiliary(cell, data, cell.auxiliary_hash(digest)))
        assert target.params["part"] == "target" and shadow.params["part"] == "shadow"
        key = (cell.attack.params.get("knows_defense", False), cell.defense.name)
        got[key] = run_cell(cell, data, target, "cell", auxiliary=shadow).metrics
    plain, defended, informed = got[(False, "none")], got[(False, "popularity_randomization")], \
        got[(True, "popularity_randomization")]
    assert plain["roc_auc"] > 0.75 and plain["balanced_accuracy"] > 0.65
    assert defended["roc_auc"] < plain["roc_auc"] - 0.2
    assert informed["roc_auc"] > 0.7
    assert defended["defended_recall_at_100"] == pytest.approx(plain["recall_at_100"])  # members untouched
    # Every target-part user asked once and got a 100-item list.
    assert plain["queries"] == plain["n_known_users"] > plain["n_members"]
    assert plain["items_returned"] == 100 * plain["queries"]


def test_a_sequential_target_serves_everyone_and_is_attacked(shared_data_dir, tmp_path):
    """A sequential target scores non-members' sequences too (no most-popular list sets them
    apart): every target-part user gets 100 items outside their history, utility is the members'
    next-item hit ratio, and the cell is graded. (A lightly trained GRU4Rec generalizes: the
    attack sits near chance here, so no AUC threshold is asserted.)"""
    grid = mia_grid(matrix={"target": [{"name": "gru4rec", "hidden": 32, "max_len": 30, "epochs": 8, "lr": 0.005}],
                            "attack": [{"name": "zhang_mlp", "epochs": 30, "protocol": "deployed"},
                                       {"name": "zhang_mlp", "epochs": 30}], "list_length": [100]})
    data = load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path)
    digest = data.meta["digest"]
    deployed_cell, published_cell = expand(parse_grid(grid))
    target = train_target(deployed_cell, data, deployed_cell.target_hash(digest))
    shadow = train_auxiliary(deployed_cell, data, deployed_cell.auxiliary_hash(digest))
    assert "hr_at_10" in target.metrics and target.lists.shape[1] == 100
    history = unpack_csr(target.payload["history"])
    assert len(target.lists) == history.shape[0] == target.params["n_members"] + target.params["n_nonmembers"]
    assert not any(set(target.lists[r]) & set(history[r].indices) for r in range(len(target.lists)))
    got = run_cell(deployed_cell, data, target, "cell", auxiliary=shadow).metrics
    assert 0 <= got["roc_auc"] <= 1 and got["queries"] == len(target.lists)

    # The published protocol (DL-MIA-SR): members' lists keep their history, non-members get the
    # non-members' most popular items minus their own, and that alone gives members away.
    published, labels = target.payload["published_lists"].numpy(), target.payload["labels"].numpy()
    overlap = [len(set(published[r]) & set(history[r].indices)) for r in range(len(published))]
    assert max(overlap[r] for r in np.flatnonzero(labels == 1)) > 0
    assert all(overlap[r] == 0 for r in np.flatnonzero(labels == 0))
    assert published_cell.target_hash(digest) == deployed_cell.target_hash(digest)  # one target serves both
    faithful = run_cell(published_cell, data, target, "cell", auxiliary=shadow).metrics
    assert faithful["roc_auc"] > max(0.75, got["roc_auc"] + 0.15)


# --------------------------------------------------------------------------- the published protocol


def test_published_lists_of_a_general_recommender_by_hand():
    # Users 0, 1 are members, 2, 3 non-members; 6 items. Item 0 is the most popular overall but
    # only members have it: non-members' popularity (item 3: 2, items 4 and 5: 1) leaves it out.
    histories = csr([[0, 1], [0, 2], [3, 4], [3, 5]], 6)
    labels = np.array([1, 1, 0, 0])
    member_lists = np.array([[1, 0], [0, 5]])  # the model's top-2, member 0's history kept in it
    lists = published_lists(member_lists, histories, labels, shared=True)
    np.testing.assert_array_equal(lists[:2], member_lists)
    # One list for every non-member, own items not skipped (3 and 4 are user 2's own).
    np.testing.assert_array_equal(lists[2:], [[3, 4], [3, 4]])


def test_published_lists_of_a_sequential_recommender_skip_each_nonmembers_own_items():
    histories = csr([[0, 1], [0, 2], [3, 4], [3, 5]], 6)
    labels = np.array([1, 1, 0, 0])
    lists = published_lists(np.array([[0, 1], [2, 0]]), histories, labels, shared=False)
    # Non-members' popularity order: 3, 4, 5, then unseen 0, 1, 2 by id; each skips their own.
    np.testing.assert_array_equal(lists[2:], [[5, 0], [4, 0]])
    np.testing.assert_array_equal(lists[:2], [[0, 1], [2, 0]])


def test_a_bad_protocol_is_a_one_line_error_naming_the_key():
    grid = mia_grid(matrix={"target": ["itemcf"], "attack": [{"name": "dlmia", "protocol": "paper"}]})
    with pytest.raises(GridError, match="protocol must be one of"):
        parse_grid(grid, source="g.yaml")


def test_strict_dlmia_never_reads_target_labels():
    """Checkpoint selection and training see the shadow labels only: shuffling the target part's
    labels (which `run_attack` keeps to grade) changes no score."""
    rng = np.random.default_rng(0)
    shadow_y, target_y = np.r_[np.ones(60), np.zeros(60)], np.r_[np.ones(50), np.zeros(50)]
    shadow_x = rng.normal(0, 1, (120, 6)) + shadow_y[:, None]
    target_x = rng.normal(0, 1, (100, 6)) + 0.8 * target_y[:, None]
    attack = DLMIA(DLMIAConfig(epochs=4))
    results = [run_attack(attack, PartFeatures(np.arange(120), shadow_x, shadow_y),
                          PartFeatures(np.arange(100), target_x, labels), seed=0)
               for labels in (target_y, rng.permutation(target_y))]
    np.testing.assert_array_equal(results[0].scores, results[1].scores)
    assert roc_auc(results[0].scores, target_y) > 0.6  # and it learned something


def test_a_published_dlmia_split_is_a_grid_dataset_with_its_own_members(shared_data_dir, tmp_path):
    grid = mia_grid(dataset={"name": "dl-mia-beauty", "min_user_interactions": 1, "min_item_interactions": 1})
    (cell, *_) = expand(parse_grid(grid))
    data = load_dataset("dl-mia-beauty", data_dir=shared_data_dir, cache_dir=tmp_path,
                        min_user_interactions=1, min_item_interactions=1)
    published = load_dlmia_split("beauty", shared_data_dir).partition
    got = partition_for(cell, data)
    for part in ("shadow", "target"):
        np.testing.assert_array_equal(got.members(part), published.members(part))
        np.testing.assert_array_equal(got.nonmembers(part), published.nonmembers(part))
    filtered = load_dataset("dl-mia-beauty", data_dir=shared_data_dir, cache_dir=tmp_path)
    with pytest.raises(DataError, match="min_user_interactions and dataset.min_item_interactions must be 1"):
        partition_for(cell, filtered)


def test_difference_norm_calls_short_vectors_members_with_a_threshold_from_the_shadow_part():
    from recsec.attacks.membership.baseline import DifferenceNorm
    # Shadow: members' vectors have length 1, non-members' length 3; the cut lies between.
    shadow_x = np.array([[1.0, 0], [0, 1], [3, 0], [0, -3]])
    attack = DifferenceNorm().fit(shadow_x, np.array([1, 1, 0, 0]), None)
    assert -3 < attack.threshold_ < -1
    target = attack.score(np.array([[0.5, 0], [0, 4.0]]))
    np.testing.assert_array_equal(target >= attack.threshold_, [True, False])
