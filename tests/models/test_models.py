"""Models: a conformance test over every registered model, BPR's hand-derived gradient, the
negative sampler, the two Adam variants, and BPR beating popularity on real ML-100k."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recsec import models
import recsec.models.sampling as sampling
from recsec.harness.metrics import recall_at_k
from recsec.models.bpr import bpr_batch_gradient
from recsec.models.optim import OPTIMIZERS, LazyAdam
from recsec.models.registry import load_model, save_model

N_USERS, N_ITEMS = 40, 30

# Overrides that keep any model small and quick; each is applied only where the config has it.
FAST = {"epochs": 3, "dim": 8, "batch_size": 64}


def small_matrix(n_users=N_USERS, n_items=N_ITEMS, density=0.2, seed=0) -> sp.csr_matrix:
    m = sp.random(n_users, n_items, density=density, format="csr", random_state=seed, dtype=np.float32)
    m.data[:] = 1
    return m


def fast_model(name: str, n_users=N_USERS, n_items=N_ITEMS, **extra):
    fields = {f.name for f in dataclasses.fields(models.model_class(name).Config)}
    params = {k: v for k, v in FAST.items() if k in fields}
    params.update(extra)
    return models.create_model(name, n_users, n_items, **params)


def all_scores(model) -> torch.Tensor:
    with torch.no_grad():
        return model.score(torch.arange(model.n_users)).detach().clone()


# --------------------------------------------------------------------------- conformance


@pytest.fixture(scope="module")
def train() -> sp.csr_matrix:
    return small_matrix()


# User-id models only; sequential models have their own suite (tests/models/test_sequential_models.py).
USER_MODELS = [n for n in models.model_names() if getattr(models.model_class(n), "input_kind", "users") == "users"]


@pytest.mark.parametrize("name", USER_MODELS)
class TestConformance:
    def test_fit_returns_self_and_score_shape(self, name, train):
        model = fast_model(name)
        assert model.fit(train, seed=0) is model
        users = torch.tensor([0, 5, 7])
        with torch.no_grad():
            scores = model.score(users)
        assert scores.shape == (3, N_ITEMS)
        assert torch.isfinite(scores).all()

    def test_score_pairs_matches_score(self, name, train):
        model = fast_model(name).fit(train, seed=0)
        users = torch.tensor([1, 2, 3])
        items = torch.tensor([[0, 4, 9], [1, 1, 2], [29, 0, 5]])
        with torch.no_grad():
            full = model.score(users)
            pairs = model.score_pairs(users, items)
        torch.testing.assert_close(pairs, full.gather(1, items))

    def test_recommend_excludes_and_returns_distinct_items(self, name, train):
        model = fast_model(name).fit(train, seed=0)
        k = 10
        users = np.arange(N_USERS)
        lists = model.recommend(users, k, exclude=train)
        assert lists.shape == (N_USERS, k)
        assert lists.dtype == np.int64
        for u in users:
            assert len(set(lists[u].tolist())) == k
            assert set(lists[u].tolist()).isdisjoint(train[u].indices.tolist())
            assert lists[u].min() >= 0 and lists[u].max() < N_ITEMS

    def test_recommend_is_best_first(self, name, train):
        model = fast_model(name).fit(train, seed=0)
        lists = model.recommend(np.arange(N_USERS), 8)
        scores = all_scores(model).numpy()
        listed = np.take_along_axis(scores, lists, axis=1)
        assert np.all(np.diff(listed, axis=1) <= 0)
        # the first item is the user's best-scoring item
        assert np.all(scores.max(axis=1) == listed[:, 0])

    def test_recommend_subset_of_users_uses_their_rows(self, name, train):
        model = fast_model(name).fit(train, seed=0)
        users = np.array([9, 2, 9])
        sub = model.recommend(users, 5, exclude=train, batch_size=2)  # chunking across batches
        full = model.recommend(np.arange(N_USERS), 5, exclude=train)
        np.testing.assert_array_equal(sub, full[users])

    def test_recommend_more_than_n_items_raises(self, name, train):
        model = fast_model(name).fit(train, seed=0)
        with pytest.raises(ValueError):
            model.recommend(np.arange(3), N_ITEMS + 1)

    def test_fit_rejects_wrong_shape(self, name, train):
        model = fast_model(name, n_users=N_USERS + 1)
        with pytest.raises(ValueError):
            model.fit(train, seed=0)

    def test_same_seed_same_scores(self, name, train):
        a = all_scores(fast_model(name).fit(train, seed=3))
        b = all_scores(fast_model(name).fit(train, seed=3))
        assert torch.equal(a, b)

    def test_same_seed_same_scores_when_batches_are_split_across_threads(self, name, two_threads):
        # Batches large enough that torch splits a gather's backward over threads: a fit must
        # still repeat bit for bit (a grid's "no poison" rows read as zero gain, not noise).
        data = small_matrix(n_users=400, n_items=300, density=0.1, seed=5)
        fields = {f.name for f in dataclasses.fields(models.model_class(name).Config)}
        large = {k: v for k, v in {"dim": 16, "batch_size": 4096, "epochs": 2}.items() if k in fields}
        make = lambda: fast_model(name, n_users=400, n_items=300, **large)  # noqa: E731
        assert torch.equal(all_scores(make().fit(data, seed=3)), all_scores(make().fit(data, seed=3)))

    def test_refit_is_independent_of_previous_state(self, name, train):
        model = fast_model(name)
        first = all_scores(model.fit(train, seed=1))
        model.fit(small_matrix(seed=9), seed=2)
        again = all_scores(model.fit(train, seed=1))
        assert torch.equal(first, again)

    def test_payload_round_trip(self, name, train, tmp_path):
        model = fast_model(name).fit(train, seed=0)
        path = tmp_path / f"{name}.pt"
        save_model(model, path)
        loaded = load_model(path)
        assert type(loaded) is type(model)
        assert loaded.config == model.config
        assert (loaded.n_users, loaded.n_items) == (model.n_users, model.n_items)
        assert torch.equal(all_scores(loaded), all_scores(model))
        np.testing.assert_array_equal(
            loaded.recommend(np.arange(N_USERS), 5, exclude=train),
            model.recommend(np.arange(N_USERS), 5, exclude=train),
        )
        # and through the in-memory payload, as the harness passes targets between tasks
        again = models.model_from_payload(model.to_payload())
        assert torch.equal(all_scores(again), all_scores(model))


def test_bpr_different_seeds_differ(train):
    a = all_scores(fast_model("bpr").fit(train, seed=0))
    b = all_scores(fast_model("bpr").fit(train, seed=1))
    assert not torch.equal(a, b)


def test_create_model_unknown_name_or_param():
    with pytest.raises(KeyError, match="bpr"):
        models.create_model("nosuch", 3, 3)
    with pytest.raises(TypeError):
        models.create_model("bpr", 3, 3, depth=2)
    with pytest.raises(ValueError):
        models.create_model("bpr", 3, 3, epochs=0)
    with pytest.raises(ValueError):
        models.create_model("bpr", 0, 3)


def test_popularity_ranks_by_training_count():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 0]], dtype=np.float32))
    model = models.create_model("pop", 3, 4).fit(train)
    # counts: item0=3, item1=2, item2=1, item3=0
    assert model.recommend(np.array([0]), 4).tolist() == [[0, 1, 2, 3]]
    # user 1 has seen items 0 and 2: best unseen are 1 then 3
    assert model.recommend(np.array([1]), 2, exclude=train).tolist() == [[1, 3]]


# --------------------------------------------------------------------------- BPR gradient


@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_bpr_batch_gradient_matches_autograd(reg):
    gen = torch.Generator().manual_seed(0)
    n_users, n_items, dim, b = 7, 11, 5, 32
    table = torch.randn(n_users + n_items, dim, generator=gen, dtype=torch.float64)
    # Small tables and a large batch: users and items repeat, so gradients must accumulate.
    users = torch.randint(0, n_users, (b,), generator=gen)
    pos = torch.randint(0, n_items, (b,), generator=gen)
    neg = torch.randint(0, n_items, (b,), generator=gen)

    rows, grads, loss = bpr_batch_gradient(table, n_users, users, pos, neg, reg)
    hand = torch.zeros_like(table).index_add_(0, rows, grads)

    leaf = table.clone().requires_grad_(True)
    p_u, q_i, q_j = leaf[users], leaf[pos + n_users], leaf[neg + n_users]
    ref_loss = -F.logsigmoid((p_u * (q_i - q_j)).sum(1)).mean()
    if reg:
        # L2 on every sampled (u, i, j) row, per example: reg/2 * ||.||^2 averaged over the batch
        ref_loss = ref_loss + reg / (2 * b) * (p_u.square().sum() + q_i.square().sum() + q_j.square().sum())
    ref_loss.backward()

    torch.testing.assert_close(loss, ref_loss.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hand, leaf.grad, atol=1e-5, rtol=1e-5)


def test_bpr_batch_gradient_float32_matches_autograd():
    gen = torch.Generator().manual_seed(1)
    n_users, n_items, dim, b = 20, 30, 16, 256
    table = torch.randn(n_users + n_items, dim, generator=gen) * 0.3
    users = torch.randint(0, n_users, (b,), generator=gen)
    pos = torch.randint(0, n_items, (b,), generator=gen)
    neg = torch.randint(0, n_items, (b,), generator=gen)
    rows, grads, loss = bpr_batch_gradient(table, n_users, users, pos, neg, 0.01)
    hand = torch.zeros_like(table).index_add_(0, rows, grads)
    leaf = table.clone().requires_grad_(True)
    emb = leaf[torch.cat([users, pos + n_users, neg + n_users])]
    p_u, q_i, q_j = emb[:b], emb[b : 2 * b], emb[2 * b :]
    ref = -F.logsigmoid((p_u * (q_i - q_j)).sum(1)).mean() + 0.01 / (2 * b) * emb.square().sum()
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hand, leaf.grad, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- negative sampler


@pytest.fixture(params=["bitmap", "searchsorted"])
def sampler_path(request, monkeypatch):
    if request.param == "searchsorted":
        monkeypatch.setattr(sampling, "_BITMAP_MAX_CELLS", 0)
    return request.param


def dense_ish() -> sp.csr_matrix:
    # Half of all cells are positives; a few users have seen all but a handful of items.
    m = small_matrix(n_users=50, n_items=40, density=0.5, seed=4).toarray()
    m[:3, :36] = 1
    m[:3, 36:] = 0
    m[:3, 38] = 1  # users 0-2 have seen 37 of 40 items: rejection alone often fails them
    return sp.csr_matrix(m)


def test_a_user_who_has_seen_every_item_is_a_clear_error():
    m = sp.csr_matrix(np.ones((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="every item"):
        sampling.InteractionSampler(m, torch.device("cpu"), torch.Generator().manual_seed(0))


def test_sampler_uses_the_expected_membership_path(sampler_path):
    s = sampling.InteractionSampler(small_matrix(), torch.device("cpu"), torch.Generator().manual_seed(0))
    assert (s._bitmap is not None) == (sampler_path == "bitmap")


def test_is_positive_matches_matrix(sampler_path):
    m = dense_ish()
    s = sampling.InteractionSampler(m, torch.device("cpu"), torch.Generator().manual_seed(0))
    users = torch.arange(m.shape[0]).repeat_interleave(m.shape[1])
    items = torch.arange(m.shape[1]).repeat(m.shape[0])
    expected = torch.from_numpy(m.toarray().ravel() > 0)
    assert torch.equal(s.is_positive(users, items), expected)


def test_negatives_are_never_positives(sampler_path):
    m = dense_ish()
    s = sampling.InteractionSampler(m, torch.device("cpu"), torch.Generator().manual_seed(0))
    users = torch.arange(m.shape[0]).repeat(100)  # 5,000 draws
    neg = s.negatives(users)
    assert neg.shape == users.shape
    dense = torch.from_numpy(m.toarray() > 0)
    assert not dense[users, neg].any(), f"{int(dense[users, neg].sum())} negatives were positives"

    many = s.negatives(users[:1000], per_user=4)
    assert many.shape == (1000, 4)
    assert not dense[users[:1000, None].expand(-1, 4), many].any()


def test_batches_cover_every_interaction_once_with_valid_negatives(sampler_path):
    m = small_matrix(density=0.3)
    s = sampling.InteractionSampler(m, torch.device("cpu"), torch.Generator().manual_seed(0))
    seen = []
    dense = torch.from_numpy(m.toarray() > 0)
    for users, pos, neg in s.batches(17):
        assert len(users) == len(pos) == len(neg) <= 17
        assert dense[users, pos].all()
        assert not dense[users, neg].any()
        seen += list(zip(users.tolist(), pos.tolist()))
    coo = m.tocoo()
    assert sorted(seen) == sorted(zip(coo.row.tolist(), coo.col.tolist()))


def test_user_uniform_batches_weigh_users_equally_and_skip_empty_rows(sampler_path):
    # User 0 holds 30 interactions, users 1-19 one each, user 20 none: per interaction, user 0
    # would be drawn 30/49 of the time; per user (LightGCN's sampler), 1/20.
    m = np.zeros((21, 40), dtype=np.float32)
    m[0, :30] = 1
    m[np.arange(1, 20), np.arange(1, 20)] = 1
    m = sp.csr_matrix(m)
    s = sampling.InteractionSampler(m, torch.device("cpu"), torch.Generator().manual_seed(0))
    dense = torch.from_numpy(m.toarray() > 0)
    users = []
    for _ in range(200):
        for u, pos, neg in s.user_uniform_batches(16):
            assert dense[u, pos].all() and not dense[u, neg].any()
            users.append(u)
    counts = torch.bincount(torch.cat(users), minlength=21)
    assert counts[20] == 0
    # 200 epochs of about 47 draws each over 20 users: about 470 a user.
    assert 300 < counts[0] < 650, counts.tolist()
    assert 300 < counts[1:20].float().mean() < 650


# --------------------------------------------------------------------------- optimizers


# BPR's sgd and learnbpr take a per-example rate (Rendle et al.); Adam's are for batch-mean gradients.
LEARNING_RATES = {"sgd": 0.1, "learnbpr": 0.1}


@pytest.mark.parametrize("optimizer", sorted((*OPTIMIZERS, "learnbpr")))
def test_optimizers_reduce_bpr_loss(optimizer):
    m = small_matrix(n_users=100, n_items=60, density=0.1, seed=2)
    losses = []
    lr = LEARNING_RATES.get(optimizer, 0.01)
    model = models.create_model("bpr", 100, 60, dim=16, epochs=30, batch_size=64, lr=lr, optimizer=optimizer)
    model.fit(m, seed=0, on_epoch=lambda epoch, loss: losses.append(loss))
    assert len(losses) == 30
    assert losses[0] == pytest.approx(np.log(2), abs=0.05)  # small init: every pair scores ~0
    assert losses[-1] < 0.6 * losses[0]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_learnbpr_steps_one_example_after_another_as_rendle_et_al():
    """The compiled kernel against LearnBPR written out in Python: each example's three rows move
    by the per-example gradient, and the next example sees them moved."""
    from recsec.models.bpr_kernel import learn_bpr_epoch

    rng = np.random.default_rng(0)
    n_users, n_items, dim, lr, reg = 4, 5, 8, 0.3, 0.05
    table = rng.normal(0, 0.5, (n_users + n_items, dim)).astype(np.float32)
    users = np.array([0, 1, 0, 3, 0, 2]); pos = np.array([1, 1, 2, 0, 1, 4]); neg = np.array([3, 0, 4, 2, 2, 1])
    expected, losses = table.astype(np.float64), []
    for u, i, j in zip(users, pos + n_users, neg + n_users):
        p_u, q_i, q_j = expected[u].copy(), expected[i].copy(), expected[j].copy()
        x = p_u @ (q_i - q_j)
        losses.append(np.log1p(np.exp(-x)))
        z = 1 / (1 + np.exp(x))
        expected[u] += lr * (z * (q_i - q_j) - reg * p_u)
        expected[i] += lr * (z * p_u - reg * q_i)
        expected[j] += lr * (-z * p_u - reg * q_j)
    loss = learn_bpr_epoch(table, users, pos, neg, n_users, lr, reg)
    np.testing.assert_allclose(table, expected, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(np.mean(losses), rel=1e-5)


def test_learnbpr_gives_one_model_per_seed_and_refuses_what_it_cannot_train():
    from recsec.models.batched import can_batch

    m = small_matrix(n_users=60, n_items=40, density=0.1, seed=3)

    def fit(seed):
        return models.create_model("bpr", 60, 40, dim=8, epochs=3, lr=0.05, optimizer="learnbpr").fit(m, seed=seed)

    assert torch.equal(fit(1).embedding, fit(1).embedding) and not torch.equal(fit(1).embedding, fit(2).embedding)
    model = models.create_model("bpr", 60, 40, dim=8, epochs=1, optimizer="learnbpr")
    assert not can_batch(model)  # copies train one by one: the kernel steps one table
    with pytest.raises(ValueError, match="learnbpr steps on the plain BPR loss"):
        model.train_rows(m, model.bpr_gradient(), seed=0, epochs=1)


def test_lazy_adam_leaves_untouched_rows_alone():
    table = torch.nn.Parameter(torch.ones(5, 3))
    opt = LazyAdam(table, lr=0.1)
    opt.step(torch.tensor([1, 3, 1]), torch.ones(3, 3))
    changed = (table.data != 1).any(1)
    assert changed.tolist() == [False, True, False, True, False]
    # the first Adam step moves every touched coordinate by lr against the gradient's sign
    torch.testing.assert_close(table.data[1], torch.full((3,), 0.9))


# --------------------------------------------------------------------------- real data


def test_lightgcn_smooths_embeddings_over_the_normalized_graph(train):
    """LightGCN's vectors are the mean of layers 0..L of D^-1/2 A D^-1/2 E, A the user-item graph,
    kept current every epoch (an epoch keeper that restores an earlier state gets its vectors)."""
    import copy

    model = fast_model("lightgcn", layers=2)
    snapshots = []
    model.fit(train, seed=0, on_epoch=lambda epoch, loss: snapshots.append(copy.deepcopy(model.state_dict())))
    model.load_state_dict(snapshots[0])
    adjacency = np.block([[np.zeros((N_USERS, N_USERS)), train.toarray()],
                          [train.toarray().T, np.zeros((N_ITEMS, N_ITEMS))]])
    degree = adjacency.sum(1)
    inv_sqrt = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    norm = inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]
    e0 = model.embedding.detach().double().numpy()
    expected = (e0 + norm @ e0 + norm @ norm @ e0) / 3
    np.testing.assert_allclose(model.propagated.double().numpy(), expected, atol=1e-5)


def test_lightgcn_gradient_flows_back_through_the_graph_as_dense_algebra_says(train):
    """Training descends the true gradient: the propagation's hand-written backward (graph @ grad,
    the graph being symmetric) gives d(sum W * mean of layers)/dE = (W + N W + N^2 W) / 3."""
    from recsec.models.lightgcn import normalized_adjacency

    model = fast_model("lightgcn", layers=2)
    model._graph = normalized_adjacency(train, torch.device("cpu"))
    weights = torch.randn(N_USERS + N_ITEMS, model.config.dim, generator=torch.Generator().manual_seed(0))
    (model.propagate() * weights).sum().backward()
    norm = model._graph.to_dense().double().numpy()
    w = weights.double().numpy()
    expected = (w + norm @ w + norm @ norm @ w) / 3
    np.testing.assert_allclose(model.embedding.grad.double().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("name,params", [
    ("bpr", {"epochs": 40}),
    ("lmf", {"epochs": 30}),
    ("ncf", {"epochs": 8, "lr": 3e-3}),
    ("lightgcn", {"epochs": 20, "lr": 5e-3}),
])
def test_trained_model_beats_popularity_on_ml100k(shared_data_dir, tmp_path, name, params):
    from recsec.harness.data import load_dataset
    from recsec.attacks.stealing.splits import stealing_split

    data = load_dataset("ml-100k", data_dir=shared_data_dir, cache_dir=tmp_path)
    split = stealing_split(data.matrix, target_share=0.5, holdout_share=0.2, seed=0)
    n_users = split.target_train.shape[0]
    users = np.arange(n_users)

    recalls = {}
    for model_name, model_params in [("pop", {}), (name, params)]:
        model = models.create_model(model_name, n_users, split.n_items, **model_params).fit(split.target_train, seed=0)
        lists = model.recommend(users, 20, exclude=split.target_train)
        recalls[model_name] = recall_at_k(lists, split.target_test, 20)
    assert recalls[name] > 1.2 * recalls["pop"], recalls
