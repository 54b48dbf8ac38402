"""Layers shared by the sequential models: a pre-norm Transformer over left-padded sequences
(SASRec causal, BERT4Rec bidirectional) and a GRU that ignores left padding (GRU4Rec, NARM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def attention_mask(real: torch.Tensor, causal: bool) -> torch.Tensor:
    """[b, 1, L, L], True where a query may attend to a key: real keys (only earlier ones when
    causal). A padding query also sees itself, so no row is empty (an empty softmax is NaN, and
    NaN would leak into real rows through the next layer)."""
    L = real.shape[1]
    allowed = real[:, None, None, :]
    if causal:
        allowed = allowed & torch.ones(L, L, dtype=torch.bool, device=real.device).tril()
    return allowed | torch.eye(L, dtype=torch.bool, device=real.device)


class TransformerBlock(nn.Module):
    """Pre-norm multi-head self-attention and feed-forward, each with a residual (as SASRec's and
    the BERT4Rec PyTorch code's blocks)."""

    def __init__(self, hidden: int, heads: int, feed_forward: int, dropout: float, activation: nn.Module):
        super().__init__()
        self.heads = heads
        self.attention_norm = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.feed_forward_norm = nn.LayerNorm(hidden)
        self.feed_forward = nn.Sequential(nn.Linear(hidden, feed_forward), activation, nn.Dropout(dropout),
                                          nn.Linear(feed_forward, hidden))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, L, d = x.shape
        q, k, v = self.qkv(self.attention_norm(x)).view(b, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                  dropout_p=self.dropout.p if self.training else 0.0)
        x = x + self.dropout(self.attention_out(attended.transpose(1, 2).reshape(b, L, d)))
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))


class TransformerEncoder(nn.Module):
    """Learned positions, `blocks` Transformer blocks and a final layer norm.

    Position embeddings count back from the last column, so the most recent item always has the
    same position whatever the sequence's length (inputs are left-padded).
    """

    def __init__(self, *, max_len: int, hidden: int, blocks: int, heads: int, dropout: float,
                 feed_forward: int, activation: nn.Module, causal: bool):
        super().__init__()
        self.causal = causal
        self.positions = nn.Parameter(torch.empty(max_len, hidden))
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden, heads, feed_forward, dropout, activation) for _ in range(blocks))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, embedded: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """embedded [b, L, d] (L <= max_len), real [b, L] (False at padding): [b, L, d]."""
        x = self.dropout(embedded + self.positions[-embedded.shape[1]:])
        mask = attention_mask(real, self.causal)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


class LeftPaddedGRU(nn.Module):
    """A GRU over left-padded rows, run as if each row began at its first real item.

    A GRU's state drifts over padding (its biases act on every step), so the same history would
    score differently with different amounts of padding. Each row is rotated so its items come
    first, run from a zero state, and rotated back; outputs at padding are zero.
    """

    def __init__(self, input_size: int, hidden: int, layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """x [b, L, d_in], real [b, L]: outputs [b, L, hidden], output t having read items <= t."""
        L = x.shape[1]
        padding = (~real).sum(1, keepdim=True)
        steps = torch.arange(L, device=x.device)
        to_front = ((steps + padding) % L).unsqueeze(-1)
        out, _ = self.gru(x.gather(1, to_front.expand_as(x)))
        back = ((steps - padding) % L).unsqueeze(-1)
        return out.gather(1, back.expand(-1, -1, out.shape[-1])) * real.unsqueeze(-1)
