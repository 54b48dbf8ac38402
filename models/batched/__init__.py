"""Model-batched training: R independent copies of a model, fit as one.

A grid often trains copies of one model that differ only in their seed (poisoning's retrainings
of a poisoned target). Each copy is a small model whose step is mostly Python overhead; stacked
along a leading copy axis, R copies share each step's Python work. Each copy draws from its own
seed exactly what a lone fit with that seed draws (its initialisation, its negatives, its batch
order), in the same order, and ends with the lone fit's weights, bit for bit: a stacked copy runs
the lone fit's kernels on the lone fit's shapes wherever a kernel's summation order depends on
them (each layer's `addmm`) or on where a value sits in a tensor (exp, log and sigmoid round a
vectorised body and a scalar tail differently: each copy's loss), and only exact elementwise
kernels (products, ReLU, Adam's update) or per-row ones (gathers and their `index_add` backward,
reductions along a row) on the stack.
`tests/models/test_batched.py` holds every copy to its lone fit.

What batching cannot share is arithmetic: the dense Adam update of every table (the paper's
optimizer) and the layers' products cost R times one copy's, so the speed-up is bounded by the
lone step's share of overhead (`benchmarks/batched_training.py` prints it).

`fit_copies` trains the copies of any model: batched where a batched trainer is written (NeuMF
with negatives drawn once, DL-Attack's setting; BPR-MF; LMF; LightGCN), one after another otherwise. Each
trainer has its module here; `common` holds what they share.
"""

from __future__ import annotations

from typing import Sequence

import scipy.sparse as sp

from recsec.models.base import Recommender
from recsec.models.batched.bpr import fit_bpr_copies
from recsec.models.batched.common import EpochCallbacks
from recsec.models.batched.lightgcn import fit_lightgcn_copies
from recsec.models.batched.lmf import fit_lmf_copies
from recsec.models.batched.neumf import fit_neumf_copies
from recsec.models.bpr import BPRMF
from recsec.models.lightgcn import LightGCN
from recsec.models.lmf import LMF
from recsec.models.ncf import NeuMF


def fit_copies(models: Sequence[Recommender], train: sp.csr_matrix, seeds: Sequence[int], *,
               on_epoch: EpochCallbacks = lambda r: None, batched: bool = True) -> list[Recommender]:
    """Fit `models[r]` on `train` with `seeds[r]` as `models[r].fit(train, seed=seeds[r])` would
    (the models: untrained copies of one architecture and config); batched where it can be."""
    if len(models) != len(seeds):
        raise ValueError(f"{len(models)} models but {len(seeds)} seeds")
    if batched and len(models) > 1 and can_batch(models[0]):
        return _trainer(models[0])(list(models), train, list(seeds), on_epoch)
    return [model.fit(train, seed=seed, on_epoch=on_epoch(r)) for r, (model, seed) in enumerate(zip(models, seeds))]


def can_batch(model: Recommender) -> bool:
    """Whether copies of this model train batched (else `fit_copies` fits them one by one)."""
    return _trainer(model) is not None


def _trainer(model: Recommender):
    """The batched trainer of this model's fit, if one is written (a subclass may fit otherwise)."""
    if type(model) is NeuMF and model.config.negatives_drawn == "once":
        return fit_neumf_copies
    if type(model) is BPRMF:
        return fit_bpr_copies
    if type(model) is LMF:
        return fit_lmf_copies
    if type(model) is LightGCN:
        return fit_lightgcn_copies
    return None
