"""DL-MIA: Wang et al., "Debiasing Learning for Membership Inference Attacks Against Recommender
Systems" (KDD 2022), on the same difference vectors as Zhang et al.

Three parts, trained together on the shadow part's labelled vectors and the target part's
vectors without labels (transductively):

1. A disentangling VAE. The encoder maps a difference vector x to two Gaussian latents: z_inv,
   meant to be the same whichever recommender produced x, and z_spec, what is specific to the
   recommender. Loss: the ELBO (reconstruction + kl_weight * KL of both parts), plus the
   recommender's identity (shadow 0 / target 1, known without any membership label) predicted
   from z_spec and, through a gradient-reversal layer, made unpredictable from z_inv.
2. The attack classifier, fed [x, mean of z_inv]: the raw vector with its recommender-invariant
   summary ("debiased" prediction). A second head on x alone gives the "biased" prediction.
3. A weight estimator w(x) in (0, 1), a trust level per difference vector. Its loss is the
   published code's (d_b / p - d_d)^2 with w = 1 / p: w(x) * l_b(x) should match l_d(x), the
   biased and debiased heads' losses, so a vector whose raw form misleads the classifier more
   than its debiased form gets a low weight. The classifier's per-sample loss on the shadow part
   is weighted by w / mean(w). Classifier and estimator are updated alternately, batch by batch.

Departures from the published code, each kept small and sound:
- the published VAE treats each float of a vector as a word of a text VAE (VGVAE, with a
  von Mises-Fisher "semantic" part); here both parts are continuous Gaussians over the vector;
- the published code pairs each shadow vector with a random target vector and applies VGVAE's
  paraphrase losses as if the pair shared a meaning, which random pairs do not; here the
  recommender identity, known without any label, supervises the split instead;
- the published joint loss also fits the classifier to its own pseudo-labels on the target
  vectors (self-training); here target vectors reach the VAE only;
- the published final loss is scaled by the batch's mean weight; here weights are per sample;
- the checkpoint is the epoch with the best ROC AUC on a held-out slice of the shadow part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsec.attacks.membership.base import (BestCheckpoint, NetworkAttack, Standardizer, batches, holdout_split, mlp,
                                     seeded_init, single_threaded)
from recsec.models.config import check_fields
from recsec.models.optim import adam
from recsec.harness import streams

CHECKPOINT_HOLDOUT = streams.purpose("dlmia: the shadow fifth that picks the checkpoint", 0xD1)


@dataclass(frozen=True)
class DLMIAConfig:
    invariant_dim: int = 16
    specific_dim: int = 16
    hidden: int = 64  # width of the VAE's encoder and decoder
    classifier_hidden: tuple[int, ...] = (32, 8)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    kl_weight: float = 0.1
    identity_weight: float = 1.0  # weight of the recommender-identity losses on the latents
    holdout: float = 0.2  # share of the shadow part held out to pick the epoch

    def __post_init__(self):
        check_fields("dlmia", self, at_least_one=("invariant_dim", "specific_dim", "hidden", "epochs", "batch_size"),
                     positive=("lr",), non_negative=("kl_weight", "identity_weight"))
        if not 0 < self.holdout < 1:
            raise ValueError(f"dlmia: holdout must be in (0, 1), got {self.holdout}")


class _ReverseGradient(torch.autograd.Function):
    """Identity forward, negated gradient backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class DisentanglingVAE(nn.Module):
    def __init__(self, dim: int, cfg: DLMIAConfig):
        super().__init__()
        self.cfg = cfg
        latent = cfg.invariant_dim + cfg.specific_dim
        self.encoder = mlp((dim, cfg.hidden, 2 * latent))  # means and log-variances
        self.decoder = mlp((latent, cfg.hidden, dim))
        self.identity_from_specific = nn.Linear(cfg.specific_dim, 1)
        self.identity_from_invariant = nn.Linear(cfg.invariant_dim, 1)

    def invariant(self, x: torch.Tensor) -> torch.Tensor:
        """E[z_inv | x]."""
        return self.encoder(x)[:, : self.cfg.invariant_dim]

    def loss(self, x: torch.Tensor, identity: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        cfg = self.cfg
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        z = mean + torch.randn(mean.shape, generator=generator) * (0.5 * log_var).exp()
        reconstruction = 0.5 * (self.decoder(z) - x).square().sum(1).mean()
        kl = 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(1).mean()
        z_inv, z_spec = z[:, : cfg.invariant_dim], z[:, cfg.invariant_dim :]
        # z_spec should tell the recommenders apart; z_inv should not (its gradient is reversed).
        identity_loss = (
            F.binary_cross_entropy_with_logits(self.identity_from_specific(z_spec).squeeze(1), identity)
            + F.binary_cross_entropy_with_logits(
                self.identity_from_invariant(_ReverseGradient.apply(z_inv)).squeeze(1), identity)
        )
        return reconstruction + cfg.kl_weight * kl + cfg.identity_weight * identity_loss


class DLMIAModel(nn.Module):
    def __init__(self, dim: int, cfg: DLMIAConfig):
        super().__init__()
        self.vae = DisentanglingVAE(dim, cfg)
        self.debiased = mlp((dim + cfg.invariant_dim, *cfg.classifier_hidden, 1))
        self.biased = mlp((dim, *cfg.classifier_hidden, 1))
        self.weight = mlp((dim, *cfg.classifier_hidden, 1))  # logit of the trust weight

    def debiased_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.debiased(torch.cat([x, self.vae.invariant(x)], dim=1)).squeeze(1)

    def head_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample losses of the biased (x alone) and debiased ([x, z_inv]) heads."""
        biased = F.binary_cross_entropy_with_logits(self.biased(x).squeeze(1), y, reduction="none")
        debiased = F.binary_cross_entropy_with_logits(self.debiased_logits(x), y, reduction="none")
        return biased, debiased

    def trust(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.weight(x).squeeze(1))


class DLMIA(NetworkAttack):
    """P(member) from the debiased head: sigmoid(classifier([x, E[z_inv | x]]))."""

    def __init__(self, config: DLMIAConfig = DLMIAConfig()):
        self.config = config

    @single_threaded()
    def fit(self, shadow_x, shadow_y, target_x, *, seed: int = 0):
        cfg = self.config
        shadow_y = np.asarray(shadow_y)
        # The VAE sees target vectors, so both parts set the scale (no labels involved).
        self.standardize_ = Standardizer(np.concatenate([shadow_x, target_x]))
        xs, xt = self.standardize_(shadow_x), self.standardize_(target_x)
        ys = torch.as_tensor(shadow_y, dtype=torch.float32)
        train, held_out = holdout_split(shadow_y, cfg.holdout, CHECKPOINT_HOLDOUT.rng(seed))
        with seeded_init(seed):
            self.model_ = model = DLMIAModel(shadow_x.shape[1], cfg)
        main = adam([p for name, p in model.named_parameters() if not name.startswith("weight.")],
                    lr=cfg.lr)
        weight = adam(model.weight.parameters(), lr=cfg.lr)
        generator = torch.Generator().manual_seed(seed)
        best = BestCheckpoint(model)
        for _ in range(cfg.epochs):
            model.train()
            for batch in batches(len(train), cfg.batch_size, generator):
                rows = train[batch.numpy()]
                x_target = xt[torch.randint(len(xt), (len(rows),), generator=generator)]
                self._step(xs[rows], ys[rows], x_target, main, weight, generator)
            best.update(self.held_out_auc(xs[held_out], shadow_y[held_out]))
        best.restore()
        return self

    def _step(self, x, y, x_target, main, weight, generator) -> None:
        model = self.model_
        # (a) VAE and heads, with the current trust weights held fixed.
        identity = torch.cat([torch.zeros(len(x)), torch.ones(len(x_target))])
        trust = model.trust(x).detach()
        biased, debiased = model.head_losses(x, y)
        loss = (model.vae.loss(torch.cat([x, x_target]), identity, generator)
                + (trust / trust.mean() * debiased).mean() + biased.mean())
        main.zero_grad()
        loss.backward()
        main.step()
        # (b) the weight estimator, with the heads held fixed: w * l_b should match l_d.
        with torch.no_grad():
            biased, debiased = model.head_losses(x, y)
        weight_loss = (model.trust(x) * biased - debiased).square().mean()
        weight.zero_grad()
        weight_loss.backward()
        weight.step()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model_.debiased_logits(x)

    @single_threaded()
    def trust(self, x: np.ndarray) -> np.ndarray:
        """The weight estimator's trust in each difference vector, in (0, 1)."""
        with torch.no_grad():
            return self.model_.trust(self.standardize_(x)).numpy()
