"""Model-batched training (models/batched.py): R copies fit as one, each as its lone fit would."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsec.models.bpr import BPRConfig, BPRMF
from recsec.models.batched import can_batch, fit_copies
from recsec.models.ncf import NCFConfig, NeuMF

# DL-Attack's NeuMF (negatives drawn once), shrunk to a few epochs.
CONFIG = NCFConfig(dim=8, mlp_dim=16, layers=(16, 8), batch_size=64, epochs=4, linear_init="torch",
                   negatives_drawn="once")


@pytest.fixture(scope="module")
def train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((60, 40)) < 0.15).astype(np.float32))


def lone(train, seed, config=CONFIG, on_epoch=None):
    return NeuMF(*train.shape, config).fit(train, seed=seed, on_epoch=on_epoch)


def largest_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a.parameters(), b.parameters()))


def test_one_copy_is_the_lone_fit_bit_for_bit(train):
    (copy,) = fit_copies([NeuMF(*train.shape, CONFIG)], train, [7])
    assert largest_difference(copy, lone(train, 7)) == 0.0


def test_each_copy_of_a_batch_ends_where_its_lone_fit_ends(train):
    seeds = [0, 5, 11]
    copies = fit_copies([NeuMF(*train.shape, CONFIG) for _ in seeds], train, seeds)
    lone_fits = [lone(train, seed) for seed in seeds]
    for copy, alone in zip(copies, lone_fits):
        assert largest_difference(copy, alone) == 0.0
    # ...and the copies are not one model: each drew its own initialisation, negatives and order.
    assert largest_difference(lone_fits[0], lone_fits[1]) > 1e-2


def test_each_copy_reports_its_own_epochs(train):
    seeds = [1, 2]
    batched, alone = {0: [], 1: []}, {0: [], 1: []}
    fit_copies([NeuMF(*train.shape, CONFIG) for _ in seeds], train, seeds,
               on_epoch=lambda r: (lambda epoch, loss: batched[r].append((epoch, loss))))
    for r, seed in enumerate(seeds):
        lone(train, seed, on_epoch=lambda epoch, loss, r=r: alone[r].append((epoch, loss)))
        assert [e for e, _ in batched[r]] == list(range(CONFIG.epochs))
        assert [loss for _, loss in batched[r]] == [loss for _, loss in alone[r]]


def test_models_without_a_batched_trainer_are_fit_one_by_one(train):
    config = BPRConfig(dim=8, epochs=2, batch_size=64)
    assert not can_batch(BPRMF(*train.shape, config))
    assert not can_batch(NeuMF(*train.shape, NCFConfig(dim=8, epochs=1)))  # fresh negatives every batch
    copies = fit_copies([BPRMF(*train.shape, config) for _ in range(2)], train, [3, 4])
    for copy, seed in zip(copies, [3, 4]):
        assert largest_difference(copy, BPRMF(*train.shape, config).fit(train, seed=seed)) == 0.0


def test_a_seed_for_each_model():
    with pytest.raises(ValueError, match="2 models but 1 seeds"):
        fit_copies([NeuMF(5, 5, CONFIG), NeuMF(5, 5, CONFIG)], sp.csr_matrix((5, 5)), [0])
