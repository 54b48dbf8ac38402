"""NARM (Li et al., CIKM 2017): a GRU encoder whose last state (the global encoder) is joined with
an attention-weighted sum of all its states (the local encoder), matched to items through a
bilinear map. Trained, as in the paper, on every prefix of every sequence with softmax
cross-entropy on the item that follows.

The attention weights are the paper's: v' sigmoid(A1 h_t + A2 h_j), not normalized (the extraction
paper's code uses a softmax and a hard sigmoid instead). The GRU has `hidden` units (the code
uses twice as many).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from recsec.models.registry import register_model
from recsec.models.sequential.base import SequentialConfig, SequentialRecommender
from recsec.models.sequential.layers import LeftPaddedGRU


@dataclass(frozen=True)
class NARMConfig(SequentialConfig):
    model: ClassVar[str] = "narm"
    epochs: int = 20  # an epoch visits every prefix: far more steps than a per-user epoch


@register_model("narm")
class NARM(SequentialRecommender):
    Config = NARMConfig

    def __init__(self, n_items: int, config: NARMConfig | None = None):
        super().__init__(n_items, config)
        d = self.config.hidden
        self.embedding_dropout = nn.Dropout(self.config.dropout)
        self.gru = LeftPaddedGRU(d, d)
        self.attend_last = nn.Linear(d, d, bias=False)  # A1
        self.attend_state = nn.Linear(d, d, bias=False)  # A2
        self.attention = nn.Linear(d, 1, bias=False)  # v
        self.output_dropout = nn.Dropout(self.config.dropout)
        self.bilinear = nn.Linear(2 * d, d, bias=False)  # B: [global; local] -> item space
        self._initialize()

    def query(self, sequences: torch.Tensor) -> torch.Tensor:
        real = sequences != self.pad
        states = self.gru(self.embedding_dropout(self.item_embedding(sequences)), real)  # [b, L, d]
        last = states[:, -1]  # the global encoder: the state after the most recent item
        energy = self.attention(torch.sigmoid(self.attend_last(last).unsqueeze(1) + self.attend_state(states)))
        local = (energy * real.unsqueeze(-1) * states).sum(1)
        return self.bilinear(self.output_dropout(torch.cat([last, local], dim=1)))
