"""VAT, vulnerability-aware adversarial training (Zhang et al., RecSys 2024), as its code
(Kaike-Zhang/VAT, utls/trainer.py, VATCFTrainer) trains BPR-MF:

From epoch `begin_adv` on (counted from 1, so epochs 1-4 are plain BPR), each batch adds
adv_reg * BPR(u + d_u, i + d_i, j + d_j) to the loss. Every sample's three gathered rows get
their own perturbation d = eps * g_u * grad / ||grad||, the gradient being that of the batch's
clean BPR loss with respect to the row (a constant of the step). g_u is the user's vulnerability,
batch-local: with L_u the sum of u's sample losses in the batch and L the mean of L_u over the
batch's distinct users, g_u = user_lmb * sigmoid(L / (L_u + 1e-9) - 1), so a user the model fits
well (low loss) is perturbed more. The L2 term applies to the clean rows only.

The code trains MF from scratch this way (64 dims, AdamW lr 1e-3, batch 2048, 30 epochs); here
the target's own schedule, optimizer, L2 and sampling are kept and VAT replaces its training,
as APR's does. eps 0.3 is the code's default for datasets it has no setting for (Gowalla 0.6,
Yelp2018 0.5, MIND 0.4).
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
from recsec.models.bpr import BPRMF


@dataclass(frozen=True)
class VATConfig:
    eps: float = 0.3
    user_lmb: float = 2.0  # the vulnerability's range: (0, user_lmb)
    adv_reg: float = 1.0
    begin_adv: int = 5  # the first adversarial epoch, counted from 1

    def __post_init__(self):
        if self.eps < 0 or self.user_lmb < 0 or self.adv_reg < 0 or self.begin_adv < 1:
            raise ValueError(f"vat: eps, user_lmb and adv_reg must be >= 0 and begin_adv >= 1, got "
                             f"{self.eps}, {self.user_lmb}, {self.adv_reg}, {self.begin_adv}")


def user_vulnerability(users: torch.Tensor, losses: torch.Tensor, lmb: float) -> torch.Tensor:
    """Per sample: lmb * sigmoid(L / (L_u + 1e-9) - 1), with L_u the user's summed loss in the
    batch and L the mean of L_u over the batch's distinct users (the code's `_get_user_eps`)."""
    distinct, position = torch.unique(users, return_inverse=True)
    per_user = torch.zeros(len(distinct), device=losses.device).index_add_(0, position, losses)
    return lmb * torch.sigmoid(per_user.mean() / (per_user[position] + 1e-9) - 1)


@register_defense("vat")
class VAT(RobustTraining):
    Config = VATConfig
    targets: ClassVar[tuple[str, ...]] = ("bpr",)

    def fit(self, model: BPRMF, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        table, reg, vat = model.embedding.detach(), model.config.reg, self.config

        def batch_gradient(epoch, users, pos, neg):
            rows = torch.cat([users, pos + model.n_users, neg + model.n_users])
            gathered = table.index_select(0, rows).requires_grad_()
            loss = self._batch_loss(gathered, users, reg, vat if epoch + 1 >= vat.begin_adv else None)
            (grads,) = torch.autograd.grad(loss, gathered)
            return rows, grads, loss.detach()

        return model.train_rows(train, batch_gradient, seed=seed, epochs=model.config.epochs, on_epoch=on_epoch)

    @staticmethod
    def _batch_loss(gathered: torch.Tensor, users: torch.Tensor, reg: float, vat: VATConfig | None) -> torch.Tensor:
        """Mean BPR of the batch (+ the L2 on its clean rows, as the target's own loss), plus
        with `vat` the perturbed BPR."""
        u, i, j = gathered.chunk(3)
        losses = F.softplus((u * j).sum(1) - (u * i).sum(1))
        loss = losses.mean()
        if reg:
            loss = loss + reg / (2 * len(users)) * gathered.square().sum()
        if vat is None:
            return loss
        (direction,) = torch.autograd.grad(losses.mean(), gathered, retain_graph=True)
        scale = vat.eps * user_vulnerability(users, losses.detach(), vat.user_lmb)
        delta = F.normalize(direction, dim=1) * scale.repeat(3).unsqueeze(1)
        du, di, dj = (gathered + delta).chunk(3)
        return loss + vat.adv_reg * F.softplus((du * dj).sum(1) - (du * di).sum(1)).mean()
