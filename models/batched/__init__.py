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

What batching cannot share is arithmetic: the dense Adam update of every table (the papers'
optimizer) and the layers' products cost R times one copy's, and R copies' dense Adam state
outgrows the cache that one copy's stays in. So it pays where a lone step is mostly overhead
(NeuMF's small batches), not where it is mostly arithmetic (BPR-MF's batches of 2,048, LightGCN):
`fit_copies` batches by default only where `benchmarks/batched_training.py` measured a gain.

`fit_copies` trains the copies of any model: batched where a batched trainer is written (NeuMF
with negatives drawn once, DL-Attack's setting; BPR-MF; LMF; LightGCN), one after another otherwise. Each
trainer has its module here; `common` holds what they share.
"""

from __future__ import annotations

from typing import Sequence

import scipy.sparse as sp
import torch

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
from recsec.models.optim import OPTIMIZERS


def fit_copies(models: Sequence[Recommender], train: sp.csr_matrix, seeds: Sequence[int], *,
               on_epoch: EpochCallbacks = lambda r: None, batched: bool | None = None) -> list[Recommender]:
    """Fit `models[r]` on `train` with `seeds[r]` as `models[r].fit(train, seed=seeds[r])` would
    (the models: untrained copies of one architecture and config). `batched`: True, as one
    batched fit wherever a batched trainer is written; False, one by one; None (the default),
    batched where that was measured to pay (`batching_pays`)."""
    if len(models) != len(seeds):
        raise ValueError(f"{len(models)} models but {len(seeds)} seeds")
    if batched:  # even one copy (its batched fit is the lone fit's bits: the tests hold it to that)
        batch = can_batch(models[0])
    else:
        batch = batched is None and len(models) > 1 and batching_pays(type(models[0]), models[0].config, models[0].device)
    if batch:
        return _trainer(type(models[0]), models[0].config)(list(models), train, list(seeds), on_epoch)
    return [model.fit(train, seed=seed, on_epoch=on_epoch(r)) for r, (model, seed) in enumerate(zip(models, seeds))]


def can_batch(model: Recommender) -> bool:
    """Whether copies of this model can train batched (else `fit_copies` fits them one by one)."""
    return _trainer(type(model), model.config) is not None


# Where batching was measured to pay, on 2 CPU cores (benchmarks/batched_training.py, R = 10-30
# copies): NeuMF's batches of 256 are mostly Python overhead (about 2x); LMF gains 1.15-1.2x.
# BPR-MF's batches of 2,048 are mostly arithmetic, and stacking its copies' dense Adam state pushes
# it out of the cache one copy's stays in (0.6x at R = 30); LightGCN's full-graph propagation is
# arithmetic too (0.9-1.05x). Not yet measured on a GPU.
PAYS_ON_CPU = (NeuMF, LMF)


def batching_pays(model_class: type[Recommender], config, device: str | torch.device) -> bool:
    """Whether copies of this model (its class and config) train faster batched on `device`, as
    measured; asked before any copy is built."""
    return (_trainer(model_class, config) is not None and torch.device(device).type == "cpu"
            and model_class in PAYS_ON_CPU)


def _trainer(model_class: type[Recommender], config):
    """The batched trainer of this model's fit, if one is written (a subclass may fit otherwise)."""
    if model_class is NeuMF and config.negatives_drawn == "once":
        return fit_neumf_copies
    if model_class is BPRMF and config.optimizer in OPTIMIZERS:  # row optimizers (not learnbpr)
        return fit_bpr_copies
    if model_class is LMF:
        return fit_lmf_copies
    if model_class is LightGCN:
        return fit_lightgcn_copies
    return None
