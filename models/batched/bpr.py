"""BPR-MF (BPRMF.train_rows), R copies at a time: their tables stacked into one table of R blocks,
stepped by one row optimizer. Its updates are elementwise (dense or lazy Adam, SGD) and the batch
gradient keeps each copy's values where a lone batch has them (`bpr_batch_gradient`), so each
block moves as its lone table does."""

from __future__ import annotations

import scipy.sparse as sp
import torch

from recsec.models.batched.common import EpochCallbacks, report_epoch, seeded_samplers
from recsec.models.bpr import BPRMF, bpr_batch_gradient
from recsec.models.optim import OPTIMIZERS


def fit_bpr_copies(models: list[BPRMF], train: sp.csr_matrix, seeds: list[int],
                   on_epoch: EpochCallbacks) -> list[BPRMF]:
    cfg, device, shape = models[0].config, models[0].device, models[0].embedding.shape
    callbacks = [on_epoch(r) for r in range(len(models))]
    _, samplers = seeded_samplers(models, train, seeds)
    table = torch.nn.Parameter(torch.cat([model.embedding.detach() for model in models]))
    offsets = torch.arange(len(models), device=device).unsqueeze(1) * shape[0]
    optimizer = OPTIMIZERS[cfg.optimizer](table, cfg.lr * cfg.batch_size if cfg.optimizer == "sgd" else cfg.lr)

    @torch.no_grad()
    def write_back():
        for model, block in zip(models, table.detach().view(len(models), *shape)):
            model.embedding.copy_(block)

    for epoch in range(cfg.epochs):
        total, n_batches = torch.zeros(len(models), device=device), 0
        for batches in zip(*(sampler.batches(cfg.batch_size) for sampler in samplers)):
            users, pos, neg = (torch.stack(part) for part in zip(*batches))
            rows, grads, loss = bpr_batch_gradient(table.detach(), models[0].n_users, users, pos, neg, cfg.reg, offsets)
            optimizer.step(rows, grads)
            total += loss.detach()
            n_batches += 1
        report_epoch(callbacks, epoch, total, n_batches, write_back)
    optimizer.close()
    write_back()
    return models
