"""Model-batched training (models/batched.py): R copies fit as one, each as its lone fit would,
to the bit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsec.models.batched import batching_pays, can_batch, fit_copies
from recsec.models.bpr import BPRConfig, BPRMF
from recsec.models.lightgcn import LightGCN, LightGCNConfig
from recsec.models.lmf import LMF, LMFConfig
from recsec.models.ncf import NCFConfig, NeuMF

# What has a batched trainer, each shrunk to a few epochs on hand-sized data: DL-Attack's NeuMF
# (negatives drawn once), BPR-MF with each of its row optimizers (and its L2), LMF, and LightGCN
# with each of its samplers.
BATCHED = {
    "neumf": lambda shape: NeuMF(*shape, NCFConfig(dim=8, mlp_dim=16, layers=(16, 8), batch_size=64, epochs=4,
                                                   linear_init="torch", negatives_drawn="once")),
    "bpr-adam": lambda shape: BPRMF(*shape, BPRConfig(dim=8, epochs=4, batch_size=64, reg=0.01)),
    "bpr-lazy-adam": lambda shape: BPRMF(*shape, BPRConfig(dim=8, epochs=4, batch_size=64, optimizer="lazy_adam")),
    "bpr-sgd": lambda shape: BPRMF(*shape, BPRConfig(dim=8, epochs=4, batch_size=64, optimizer="sgd", lr=0.01)),
    "lmf": lambda shape: LMF(*shape, LMFConfig(dim=8, epochs=4, batch_size=64, negatives=3, weight_decay=1e-4)),
    "lightgcn": lambda shape: LightGCN(*shape, LightGCNConfig(dim=8, layers=2, epochs=4, batch_size=64)),
    "lightgcn-interactions": lambda shape: LightGCN(*shape, LightGCNConfig(dim=8, layers=2, epochs=4, batch_size=64,
                                                                           sampling="interaction", decay=0.0)),
}


@pytest.fixture(scope="module")
def train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((60, 40)) < 0.15).astype(np.float32))


def largest_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("model", BATCHED)
def test_one_copy_is_the_lone_fit_bit_for_bit(train, model):
    build = BATCHED[model]
    assert can_batch(build(train.shape))
    (copy,) = fit_copies([build(train.shape)], train, [7], batched=True)
    assert largest_difference(copy, build(train.shape).fit(train, seed=7)) == 0.0


@pytest.mark.parametrize("model", BATCHED)
def test_each_copy_of_a_batch_ends_where_its_lone_fit_ends(train, model):
    build, seeds = BATCHED[model], [0, 5, 11]
    copies = fit_copies([build(train.shape) for _ in seeds], train, seeds, batched=True)
    lone_fits = [build(train.shape).fit(train, seed=seed) for seed in seeds]
    for copy, alone in zip(copies, lone_fits):
        assert largest_difference(copy, alone) == 0.0
    # ...and the copies are not one model: each drew its own initialisation, negatives and order.
    assert largest_difference(lone_fits[0], lone_fits[1]) > 1e-2


@pytest.mark.parametrize("model", BATCHED)
def test_each_copy_reports_its_own_epochs(train, model):
    build, seeds = BATCHED[model], [1, 2]
    batched, alone = {0: [], 1: []}, {0: [], 1: []}
    fit_copies([build(train.shape) for _ in seeds], train, seeds, batched=True,
               on_epoch=lambda r: (lambda epoch, loss: batched[r].append((epoch, loss))))
    for r, seed in enumerate(seeds):
        build(train.shape).fit(train, seed=seed, on_epoch=lambda epoch, loss, r=r: alone[r].append((epoch, loss)))
        assert batched[r] == alone[r] and [epoch for epoch, _ in alone[r]] == [0, 1, 2, 3]


def test_models_without_a_batched_trainer_are_fit_one_by_one(train):
    config = NCFConfig(dim=8, mlp_dim=8, layers=(8,), epochs=2, batch_size=64)  # fresh negatives every batch
    assert not can_batch(NeuMF(*train.shape, config))
    copies = fit_copies([NeuMF(*train.shape, config) for _ in range(2)], train, [3, 4], batched=True)
    for copy, seed in zip(copies, [3, 4]):
        assert largest_difference(copy, NeuMF(*train.shape, config).fit(train, seed=seed)) == 0.0


def test_lightgcn_copies_with_users_of_no_interaction_are_fit_one_by_one(train):
    # LightGCN's sampler drops the users without interactions it drew, so copies' epochs differ.
    rows = train.tolil()
    rows[3, :] = 0
    lonely = rows.tocsr()
    copies = fit_copies([BATCHED["lightgcn"](lonely.shape) for _ in range(2)], lonely, [1, 2], batched=True)
    for copy, seed in zip(copies, [1, 2]):
        assert largest_difference(copy, BATCHED["lightgcn"](lonely.shape).fit(lonely, seed=seed)) == 0.0


def test_by_default_copies_are_batched_only_where_it_was_measured_to_pay(train):
    # NeuMF's small batches are mostly Python overhead; BPR-MF's large ones mostly arithmetic
    # (benchmarks/batched_training.py)
    def pays(model):
        return batching_pays(type(model), model.config, model.device)

    assert pays(BATCHED["neumf"](train.shape)) and not pays(BATCHED["bpr-adam"](train.shape))
    assert can_batch(BATCHED["bpr-adam"](train.shape))


def test_a_seed_for_each_model():
    with pytest.raises(ValueError, match="2 models but 1 seeds"):
        fit_copies([BPRMF(5, 5), BPRMF(5, 5)], sp.csr_matrix((5, 5)), [0])
