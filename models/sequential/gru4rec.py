"""GRU4Rec (Hidasi et al., ICLR 2016): a GRU over the item sequence, predicting the next item at
every step. Trained with softmax cross-entropy over all items, one of the paper's losses (and the
one its later version found best); item embeddings are shared with the output layer instead of the
paper's one-hot input and separate output weights, as most re-implementations do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from recsec.models.config import check_fields
from recsec.models.registry import register_model
from recsec.models.sequential.base import SequentialConfig, SequentialRecommender
from recsec.models.sequential.layers import LeftPaddedGRU
from recsec.models.sequential.training import Batch, next_item_cross_entropy


@dataclass(frozen=True)
class GRU4RecConfig(SequentialConfig):
    model: ClassVar[str] = "gru4rec"

    layers: int = 1

    def __post_init__(self):
        super().__post_init__()
        check_fields(self.model, self, at_least_one=("layers",))


@register_model("gru4rec")
class GRU4Rec(SequentialRecommender):
    encodes_positions = True
    Config = GRU4RecConfig
    train_on = "sequences"

    def __init__(self, n_items: int, config: GRU4RecConfig | None = None):
        super().__init__(n_items, config)
        cfg = self.config
        self.dropout = nn.Dropout(cfg.dropout)
        self.gru = LeftPaddedGRU(cfg.hidden, cfg.hidden, cfg.layers, cfg.dropout)
        self._initialize()

    def encode(self, sequences: torch.Tensor) -> torch.Tensor:
        """[b, L] -> [b, L, hidden]: the GRU state after each item."""
        return self.dropout(self.gru(self.dropout(self.item_embedding(sequences)), sequences != self.pad))

    def query(self, sequences: torch.Tensor) -> torch.Tensor:
        return self.encode(sequences)[:, -1]

    def training_loss(self, batch: Batch) -> torch.Tensor:
        return next_item_cross_entropy(self, self.encode(batch.inputs), batch.targets)
