"""NeuMF (He et al., 2017): a GMF branch (element-wise product of embeddings) and an MLP branch
(concatenated embeddings through a tower), joined by a final linear layer; trained with binary
cross-entropy on observed interactions and `negatives` sampled unobserved items per positive
(the paper samples 4). Deviation: no GMF/MLP pre-training; both branches train jointly from
random initialization, as most re-implementations do.

Defaults are ours; the settings of DL-Attack's code (Huang et al. 2021) are `dim: 8, mlp_dim: 32,
layers: [32, 16, 8], batch_size: 256, epochs: 20, linear_init: torch, negatives_drawn: once`
(its MLP takes 2 x 32 = 64 inputs: its "[64, 32, 16, 8]").
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch
from torch import nn

from recsec.models.base import EpochCallback, Recommender, gather_rows, normal_init_
from recsec.models.config import check_fields
from recsec.models.registry import register_model
from recsec.models.sampling import make_generator
from recsec.models.training import train_fixed_negatives, train_sampled


@dataclass(frozen=True)
class NCFConfig:
    dim: int = 64  # GMF embedding size (and the MLP's, unless mlp_dim says otherwise)
    layers: tuple[int, ...] = (64, 32, 16)  # MLP tower after the 2*mlp_dim concatenation
    epochs: int = 30
    batch_size: int = 2048
    lr: float = 1e-3
    negatives: int = 4
    weight_decay: float = 0.0
    init_std: float = 0.01
    mlp_dim: int = 0  # MLP embedding size; 0: the same as dim
    # Linear layers: "xavier" (NCF's Keras code) or "torch" (PyTorch's default, DL-Attack's code).
    linear_init: str = "xavier"
    # "each_batch": fresh negatives every batch; "once": drawn once before training (NCF's
    # instances as DL-Attack's code builds them, reused every epoch).
    negatives_drawn: str = "each_batch"

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))  # YAML gives lists
        if self.mlp_dim < 0:
            raise ValueError(f"ncf: mlp_dim must be >= 0 (0: the same as dim), got {self.mlp_dim}")
        if self.linear_init not in ("xavier", "torch"):
            raise ValueError(f"ncf: linear_init must be xavier or torch, got {self.linear_init!r}")
        if self.negatives_drawn not in ("each_batch", "once"):
            raise ValueError(f"ncf: negatives_drawn must be each_batch or once, got {self.negatives_drawn!r}")
        check_fields("ncf", self, at_least_one=("dim", "epochs", "batch_size", "negatives"),
                     positive=("lr", "init_std"), non_negative=("weight_decay",))
        if not self.layers or any(width < 1 for width in self.layers):
            raise ValueError(f"ncf: layers must be positive widths, got {self.layers}")


@register_model("ncf")
class NeuMF(Recommender):
    Config = NCFConfig
    objective = "bce"  # what fit() optimizes
    # Full ranking scores users x all items through the MLP: keep chunks small in memory.
    ranking_batch_size = 128

    def __init__(self, n_users: int, n_items: int, config: NCFConfig = NCFConfig()):
        super().__init__(n_users, n_items, config)
        d, d_mlp = config.dim, config.mlp_dim or config.dim
        self.user_gmf = nn.Parameter(torch.empty(n_users, d))
        self.item_gmf = nn.Parameter(torch.empty(n_items, d))
        self.user_mlp = nn.Parameter(torch.empty(n_users, d_mlp))
        self.item_mlp = nn.Parameter(torch.empty(n_items, d_mlp))
        widths = (2 * d_mlp,) + config.layers
        tower = []
        for width_in, width_out in zip(widths, widths[1:]):
            tower += [nn.Linear(width_in, width_out), nn.ReLU()]
        self.tower = nn.Sequential(*tower)
        self.output = nn.Linear(d + config.layers[-1], 1)
        self.reset_parameters(make_generator(0, torch.device("cpu")))

    def reset_parameters(self, generator: torch.Generator) -> None:
        normal_init_((self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp), generator, self.config.init_std)
        with torch.no_grad():
            for layer in list(self.tower) + [self.output]:
                if not isinstance(layer, nn.Linear):
                    continue
                uniform = lambda shape, bound: (torch.rand(shape, generator=generator,  # noqa: E731
                                                           device=generator.device) * 2 - 1) * bound
                if self.config.linear_init == "xavier":
                    layer.weight.copy_(uniform(layer.weight.shape, (6 / (layer.in_features + layer.out_features)) ** 0.5))
                    layer.bias.zero_()
                else:  # nn.Linear's own: kaiming_uniform(a=sqrt(5)) weights, U(+-1/sqrt(fan_in)) bias
                    bound = layer.in_features ** -0.5
                    layer.weight.copy_(uniform(layer.weight.shape, bound))
                    layer.bias.copy_(uniform(layer.bias.shape, bound))

    def _score(self, users: torch.Tensor, item_gmf: torch.Tensor, item_mlp: torch.Tensor) -> torch.Tensor:
        """users [b]; item tables [b, m, d] or [m, d] (shared by every user): scores [b, m]."""
        b = len(users)
        if item_gmf.dim() == 2:
            item_gmf = item_gmf.unsqueeze(0).expand(b, -1, -1)
            item_mlp = item_mlp.unsqueeze(0).expand(b, -1, -1)
        m = item_gmf.shape[1]
        gmf = gather_rows(self.user_gmf, users).unsqueeze(1) * item_gmf
        user_mlp = gather_rows(self.user_mlp, users).unsqueeze(1).expand(b, m, -1)
        mlp = self.tower(torch.cat([user_mlp, item_mlp], dim=-1))
        return self.output(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self._score(users, self.item_gmf, self.item_mlp)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._score(users, gather_rows(self.item_gmf, items), gather_rows(self.item_mlp, items))

    def item_tables(self) -> dict[str, torch.Tensor]:
        return {"gmf": self.item_gmf, "mlp": self.item_mlp}

    def user_vectors(self, users: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"gmf": gather_rows(self.user_gmf, users), "mlp": gather_rows(self.user_mlp, users)}

    def score_with_item_vectors(self, users, items, vectors):
        return self._score(users, vectors["gmf"], vectors["mlp"])

    def fit(self, train: sp.csr_matrix, *, seed: int = 0, on_epoch: EpochCallback | None = None):
        cfg = self.config
        if cfg.negatives_drawn == "once":
            return train_fixed_negatives(self, train, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                         negatives=cfg.negatives, weight_decay=cfg.weight_decay, seed=seed,
                                         on_epoch=on_epoch)
        return train_sampled(self, train, objective="bce", epochs=cfg.epochs, batch_size=cfg.batch_size,
                             lr=cfg.lr, negatives=cfg.negatives, weight_decay=cfg.weight_decay,
                             seed=seed, on_epoch=on_epoch)
