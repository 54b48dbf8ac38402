"""VBPR (He & McAuley, AAAI 2016), the simplified variant of the TAaMR code, and AMR (Tang et al.,
TKDE 2019), adversarial training on the item features: the defense-by-training of issue 6.

- `variant: vbpr`: score(u, i) = b_i + g_u . g_i + t_u . (E f_i) + b' . f_i
- `variant: taamr`: score(u, i) = p_u . (q_i + E f_i): no visual user factor, no biases (the
  TAaMR code's VBPR and AMR, its faithful option).
f_i is the item's CNN feature vector divided by one scale, the largest |feature| of the features
the model was built with (as the TAaMR code does). The scale stays fixed afterwards: features of
attacked images are scaled the same way, as a deployed model's preprocessing would be.

Training is BPR with Adam over every interaction per epoch, one sampled negative each. With
`adv_weight > 0` (registered as `amr`), once `adv_start` of the epochs have run (AMR and the TAaMR
code first train plain VBPR, then continue adversarially) the loss becomes
    BPR(f) + adv_weight * BPR(f + delta),   delta = adv_eps * g / ||g||_2   (per item row)
with g the gradient of the batch's BPR loss with respect to the features of the items in the
batch (summed over an item's occurrences, i.e. the gradient with respect to the feature matrix,
as in the TAaMR code), not propagated through. `adv_norm: linf` uses adv_eps * sign(g) instead
(FGSM rather than AMR's fast gradient method).

The recommender never sees images. `with_features(new)` gives the same trained model over other
features (those of attacked or purified images): what TAaMR measures without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recsec.models.base import EpochCallback, Recommender, gather_rows
from recsec.models.losses import bpr_loss
from recsec.models.optim import adam
from recsec.models.sampling import make_generator
from recsec.models.training import train_pairs
from recsec.models.registry import register_model
from recsec.models.visual.registry import register_visual_model

VARIANTS = ("vbpr", "taamr")
ADV_NORMS = ("l2", "linf")


@dataclass(frozen=True)
class VBPRConfig:
    variant: str = "vbpr"
    dim: int = 32  # g_u, g_i (vbpr) or p_u, q_i and E's output (taamr)
    visual_dim: int = 32  # t_u and E's output (vbpr only)
    epochs: int = 40
    batch_size: int = 512
    lr: float = 1e-3
    reg: float = 1e-4  # L2 on the batch's user and item rows, per example
    init_std: float = 0.01
    adv_weight: float = 0.0  # AMR's lambda; 0: plain BPR
    adv_eps: float = 1.0  # size of the feature perturbation, in units of the scaled features
    adv_norm: str = "l2"
    adv_start: float = 0.5  # share of the epochs trained without the adversarial term

    def __post_init__(self):
        name = type(self).__name__.removesuffix("Config").lower()
        if self.variant not in VARIANTS:
            raise ValueError(f"{name}: variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.adv_norm not in ADV_NORMS:
            raise ValueError(f"{name}: adv_norm must be one of {ADV_NORMS}, got {self.adv_norm!r}")
        for field in ("dim", "visual_dim", "epochs", "batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{name}: {field} must be >= 1, got {getattr(self, field)}")
        for field in ("lr", "init_std"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{name}: {field} must be > 0, got {getattr(self, field)}")
        for field in ("reg", "adv_weight", "adv_eps"):
            if getattr(self, field) < 0:
                raise ValueError(f"{name}: {field} must be >= 0, got {getattr(self, field)}")
        if not 0 <= self.adv_start < 1:
            raise ValueError(f"{name}: adv_start must be in [0, 1), got {self.adv_start}")


@register_model("vbpr")
@register_visual_model("vbpr")
class VBPR(Recommender):
    Config = VBPRConfig
    objective = "bpr"
    # Grids may name it as a target; it is built from item features, which only visual cells have.
    input_kind = "images"

    def __init__(self, n_users: int, n_items: int, config: VBPRConfig = VBPRConfig(), *,
                 features: torch.Tensor | np.ndarray):
        super().__init__(n_users, n_items, config)
        features = torch.as_tensor(features, dtype=torch.float32)
        if features.ndim != 2 or features.shape[0] != n_items:
            raise ValueError(f"{self.name}: features must be [n_items={n_items}, d], got {tuple(features.shape)}")
        self.register_buffer("features", features.clone())
        scale = features.abs().max() if features.numel() else torch.tensor(1.0)
        self.register_buffer("feature_scale", torch.where(scale > 0, scale, torch.ones_like(scale)))
        d, dv, fdim = config.dim, config.visual_dim, features.shape[1]
        visual_out = dv if config.variant == "vbpr" else d
        self.user_factors = nn.Parameter(torch.empty(n_users, d))
        self.item_factors = nn.Parameter(torch.empty(n_items, d))
        self.projection = nn.Parameter(torch.empty(fdim, visual_out))  # E
        if config.variant == "vbpr":
            self.user_visual = nn.Parameter(torch.empty(n_users, dv))  # t_u
            self.item_bias = nn.Parameter(torch.zeros(n_items))  # b_i
            self.visual_bias = nn.Parameter(torch.zeros(fdim))  # b'
        self.reset_parameters(make_generator(0, torch.device("cpu")))

    @property
    def feature_dim(self) -> int:
        return self.features.shape[1]

    def reset_parameters(self, generator: torch.Generator) -> None:
        std = self.config.init_std
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name in ("item_bias", "visual_bias"):
                    param.zero_()
                else:
                    param.copy_(torch.randn(param.shape, generator=generator, device=generator.device) * std)

    # -- scoring ---------------------------------------------------------------------------------
    def scaled_features(self, features: torch.Tensor | None = None) -> torch.Tensor:
        return (self.features if features is None else features) / self.feature_scale

    def _item_terms(self, scaled: torch.Tensor, items: torch.Tensor | None):
        """(latent item vectors, visual item vectors, item biases or None) for `items` (None:
        all), from scaled features of the same rows."""
        q = self.item_factors if items is None else gather_rows(self.item_factors, items)
        visual = scaled @ self.projection
        if self.config.variant == "taamr":
            return q + visual, None, None
        bias = self.item_bias if items is None else gather_rows(self.item_bias, items)
        return q, visual, bias + scaled @ self.visual_bias

    def _score(self, users: torch.Tensor, q, visual, bias) -> torch.Tensor:
        """users [b]; q, visual [n, d] (all items: [b, n] scores) or [b, m, d] (per user)."""
        p = gather_rows(self.user_factors, users)
        per_user = q.ndim == 3
        dot = (lambda a, b: (a.unsqueeze(1) * b).sum(-1)) if per_user else (lambda a, b: a @ b.T)
        scores = dot(p, q)
        if visual is not None:
            scores = scores + dot(gather_rows(self.user_visual, users), visual) + (bias if per_user else bias.unsqueeze(0))
        return scores

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self._score(users, *self._item_terms(self.scaled_features(), None))

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._pair_scores(users, items, self.scaled_features()[items])

    def _pair_scores(self, users: torch.Tensor, items: torch.Tensor, scaled: torch.Tensor) -> torch.Tensor:
        """Scores of items [b, m] whose scaled features are `scaled` [b, m, d] (differentiable in them)."""
        return self._score(users, *self._item_terms(scaled, items))

    def with_features(self, features: torch.Tensor | np.ndarray) -> "VBPR":
        """The same trained model (a copy of its weights and feature scale) over other item
        features [n_items, d], e.g. those of attacked images."""
        features = torch.as_tensor(features, dtype=torch.float32)
        if tuple(features.shape) != tuple(self.features.shape):
            raise ValueError(f"{self.name}: new features must be {tuple(self.features.shape)}, "
                             f"got {tuple(features.shape)}")
        other = type(self)(self.n_users, self.n_items, self.config, features=features)
        state = dict(self.state_dict())
        state["features"] = features
        other.load_state_dict(state)
        return other.to(self.device)

    # -- training --------------------------------------------------------------------------------
    def fit(self, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        cfg = self.config
        scaled_all = self.scaled_features()
        adv_from = int(round(cfg.adv_start * cfg.epochs)) if cfg.adv_weight > 0 else cfg.epochs

        def batch_loss(epoch, sampler, users, pos, neg):
            return self._batch_loss(users, pos, neg, scaled_all, adversarial=epoch >= adv_from)

        return train_pairs(self, train, adam(self.parameters(), lr=cfg.lr), batch_loss,
                           epochs=cfg.epochs, batch_size=cfg.batch_size, seed=seed, on_epoch=on_epoch)

    def _batch_loss(self, users, pos, neg, scaled_all, *, adversarial: bool) -> torch.Tensor:
        cfg = self.config
        b = len(users)
        items = torch.stack([pos, neg], 1)  # [b, 2]
        # One feature leaf per distinct item, so an item's gradient sums over its occurrences.
        unique, inverse = torch.unique(items, return_inverse=True)
        leaf = scaled_all[unique].clone().requires_grad_(adversarial)
        scores = self._pair_scores(users, items, gather_rows(leaf, inverse))
        loss = bpr_loss(scores[:, 0], scores[:, 1])
        if adversarial:
            (grad,) = torch.autograd.grad(loss, leaf, retain_graph=True)
            if cfg.adv_norm == "l2":
                delta = cfg.adv_eps * F.normalize(grad, dim=1)
            else:
                delta = cfg.adv_eps * grad.sign()
            adv_scores = self._pair_scores(users, items, (leaf + delta).detach()[inverse])
            loss = loss + cfg.adv_weight * bpr_loss(adv_scores[:, 0], adv_scores[:, 1])
        if cfg.reg:
            rows = [gather_rows(self.user_factors, users), gather_rows(self.item_factors, items)]
            if cfg.variant == "vbpr":
                rows += [gather_rows(self.user_visual, users), gather_rows(self.item_bias, items)]
            loss = loss + cfg.reg / (2 * b) * sum(r.square().sum() for r in rows)
        return loss

    def to_payload(self) -> dict:
        payload = super().to_payload()
        payload["feature_dim"] = self.feature_dim
        return payload


@dataclass(frozen=True)
class AMRConfig(VBPRConfig):
    adv_weight: float = 1.0  # Tang et al.'s lambda (the TAaMR code's default is 0.1)
    adv_eps: float = 1.0  # the TAaMR code's default

    def __post_init__(self):
        super().__post_init__()
        if self.adv_weight <= 0:
            raise ValueError(f"amr: adv_weight must be > 0 (0 is plain VBPR), got {self.adv_weight}")


@register_model("amr")
@register_visual_model("amr")
class AMR(VBPR):
    """VBPR trained adversarially on its item features (a model, so that it is a grid target)."""

    Config = AMRConfig
