"""PTA's clone (Zhu et al. 2023, Eq. for the attention fusion): every item vector the clone uses
is a per-(user, item) mix of its own vector q_c and the auxiliary model's fixed vector q_a:

    alpha = w . ReLU(p_u * q_c) + b,  beta = w . ReLU(p_u * q_a) + b   (w, b shared)
    [alpha', beta'] = softmax([alpha, beta]);  q_f = alpha' q_c + beta' q_a

For a clone with several item tables (NCF: GMF and MLP), each table is fused the same way with
the user vector that meets it; for a sequential clone, p_u is the sequence's next-item query.
The auxiliary vectors are buffers: they never train.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recsec.models.base import Recommender, gather_rows
from recsec.models.sequential.base import recommend_after


class FusedItemClone(Recommender):
    name = "fused"
    ranking_batch_size = 64  # scoring builds [users, n_items, d] fused tensors

    def __init__(self, clone: Recommender, auxiliary_tables: dict[str, torch.Tensor]):
        # A sequential clone has no user table: its "users" are the sequences it is asked about.
        super().__init__(clone.n_users if clone.input_kind == "users" else 1, clone.n_items, clone.config)
        self.input_kind = clone.input_kind
        own = clone.item_tables()
        if not own or set(own) != set(auxiliary_tables):
            raise ValueError(f"clone {clone.name} item tables {sorted(own)} do not match the "
                             f"auxiliary model's {sorted(auxiliary_tables)}")
        dims = {t.shape[1] for t in own.values()}
        if len(dims) != 1:
            raise ValueError(f"fusion shares one attention vector, but {clone.name}'s tables have dims {dims}")
        self.clone = clone
        self.table_names = sorted(own)
        for name in self.table_names:
            self.register_buffer(f"aux_{name}", auxiliary_tables[name].detach().clone().to(own[name].device))
        self.attention = nn.Parameter(torch.zeros(dims.pop(), device=clone.device))
        self.attention_bias = nn.Parameter(torch.zeros((), device=clone.device))

    def reset_parameters(self, generator: torch.Generator) -> None:
        self.clone.reset_parameters(generator)
        with torch.no_grad():
            d = self.attention.shape[0]
            self.attention.copy_(torch.randn(d, generator=generator, device=generator.device) / d**0.5)
            self.attention_bias.zero_()

    def fused_vectors(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        own = self.clone.item_tables()
        user_side = self.clone.user_vectors(users)
        fused = {}
        for name in self.table_names:
            q_c, q_a = gather_rows(own[name], items), gather_rows(getattr(self, f"aux_{name}"), items)  # [b, m, d]
            p_u = user_side[name].unsqueeze(1)
            alpha = F.relu(p_u * q_c) @ self.attention + self.attention_bias
            beta = F.relu(p_u * q_a) @ self.attention + self.attention_bias
            weights = torch.softmax(torch.stack([alpha, beta], dim=-1), dim=-1).unsqueeze(-2)
            fused[name] = (weights[..., 0] * q_c) + (weights[..., 1] * q_a)
        return fused

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.clone.score_with_item_vectors(users, items, self.fused_vectors(users, items))

    def score(self, users: torch.Tensor) -> torch.Tensor:
        items = torch.arange(self.n_items, device=users.device).expand(len(users), -1)
        return self.score_pairs(users, items)

    @property
    def pad(self) -> int:
        return self.clone.pad

    def recommend(self, contexts, k, exclude=None, batch_size=None):
        if self.input_kind == "sequences":
            return recommend_after(self, contexts, k, exclude, batch_size or self.ranking_batch_size)
        return super().recommend(contexts, k, exclude, batch_size)

    def fit(self, train, *, seed=0, on_epoch=None):
        raise NotImplementedError("a fused clone is trained by its attack (see attacks/stealing/pta.py)")
