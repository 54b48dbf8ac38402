"""APR, adversarial personalized ranking (He et al., SIGIR 2018), as its code
(hexiangnan/adversarial_personalized_ranking, AMF.py) trains it: BPR-MF first trained as usual,
then trained further on

    L_BPR(theta) + reg_adv * L_BPR(theta + delta),  delta = eps * g / ||g|| per embedding row,

where g is the gradient of the batch's BPR loss with respect to the embedding table (the rows
the batch touches; each row normalized on its own) and delta is a constant of the step, drawn
afresh before every batch. The target's own schedule is the pretraining; `epochs` adversarial
epochs follow with the same optimizer settings. The code: 64 dimensions, Adagrad lr 0.05, batch
512, 1,000 BPR then 1,000 APR epochs, eps 0.5, reg_adv 1 (we keep the target's optimizer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recsec.defenses.poisoning.robust import RobustTraining
from recsec.defenses.registry import register_defense
from recsec.models.base import EpochCallback
from recsec.models.bpr import BPRMF, bpr_batch_gradient
from recsec.harness import streams


@dataclass(frozen=True)
class APRConfig:
    eps: float = 0.5  # the perturbation's norm per embedding row
    reg_adv: float = 1.0  # weight of the adversarial loss
    epochs: int = 20  # adversarial epochs after the target's own training

    def __post_init__(self):
        if self.eps < 0 or self.reg_adv < 0 or self.epochs < 0:
            raise ValueError(f"apr: eps, reg_adv and epochs must be >= 0, got {self.eps}, {self.reg_adv}, {self.epochs}")


@register_defense("apr")
class APR(RobustTraining):
    Config = APRConfig
    targets: ClassVar[tuple[str, ...]] = ("bpr",)

    def fit(self, model: BPRMF, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        model.fit(train, seed=seed, on_epoch=on_epoch)
        cfg, apr = model.config, self.config
        table = model.embedding.detach()

        def batch_gradient(epoch, users, pos, neg):
            rows, grads, loss = bpr_batch_gradient(table, model.n_users, users, pos, neg, cfg.reg)
            touched, position = torch.unique(rows, return_inverse=True)
            row_grad = torch.zeros(len(touched), table.shape[1], device=table.device).index_add_(0, position, grads)
            delta = apr.eps * F.normalize(row_grad, dim=1)
            table.index_add_(0, touched, delta)  # theta + delta, for the adversarial gradient only
            adv_rows, adv_grads, adv_loss = bpr_batch_gradient(table, model.n_users, users, pos, neg, 0.0)
            table.index_add_(0, touched, -delta)
            return (torch.cat([rows, adv_rows]), torch.cat([grads, apr.reg_adv * adv_grads]),
                    loss + apr.reg_adv * adv_loss)

        return model.train_rows(train, batch_gradient, seed=streams.SECOND_TRAINING.seed(seed), epochs=apr.epochs, on_epoch=on_epoch,
                                reset=False, first_epoch=cfg.epochs)
