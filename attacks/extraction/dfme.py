"""Data-free model extraction (Yue et al., RecSys 2021): synthesize query sequences against the
target (synthesis.py), then distill a surrogate from every (prefix, answer) pair with the margin
ranking losses shared with the stealing family (attacks/lists.py).

The threat model's `query_budget` counts synthetic sequences; each costs `length` oracle queries,
and the oracle is given exactly that many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.extraction.synthesis import MODES, Prefixes, synthesize
from attacks.lists import ListLossConfig, finetune_on_lists
from attacks.registry import register_attack
from attacks.threat import Knowledge, SequenceView
from models import ModelSpec
from models.sampling import make_generator


@dataclass(frozen=True)
class DFMEConfig(ListLossConfig):
    ranking_loss: str = "hinge"  # margin ranking between consecutive list items (margin 0.5)...
    item_loss: str = "hinge"  # ...and between each list item and one sampled outside the list
    synthesis: str = "autoregressive"  # or "random"
    length: int = 50  # items per synthetic sequence (the paper: the target's maximum length)
    sequences: int = 3000  # synthetic sequences when the grid sets no query_budget (GRO's code)
    epochs: int = 10
    batch_users: int = 128  # prefixes per distillation batch

    def __post_init__(self):
        super().__post_init__()
        if self.synthesis not in MODES:
            raise ValueError(f"synthesis must be one of {MODES}, got {self.synthesis!r}")
        if self.length < 1 or self.sequences < 1:
            raise ValueError("length and sequences must be >= 1")


@dataclass
class ExtractionResult:
    surrogate: object  # a SequentialRecommender
    synthetic_sequences: int


@register_attack("dfme")
class DataFreeExtraction:
    family: ClassVar[str] = "extraction"
    Config = DFMEConfig
    fine_tunes_clone: ClassVar[bool] = True
    needs_auxiliary: ClassVar[bool] = False
    target_kinds: ClassVar[tuple[str, ...]] = ("sequences",)

    def __init__(self, config: DFMEConfig, clone: ModelSpec):
        self.config = config
        self.clone_spec = clone

    def sequence_budget(self, knowledge: Knowledge) -> int:
        return self.config.sequences if knowledge.query_budget is None else knowledge.query_budget

    def query_allowance(self, knowledge: Knowledge) -> int:
        """Oracle queries the threat model grants: one per prefix of every synthetic sequence."""
        return self.sequence_budget(knowledge) * self.config.length

    def run(self, view: SequenceView, oracle, *, seed: int, device: str = "cpu") -> ExtractionResult:
        cfg = self.config
        surrogate = self.clone_spec.build(0, view.n_items).to(device)
        surrogate.reset_parameters(make_generator(seed, surrogate.device))
        n = self.sequence_budget(view.knowledge)
        data = synthesize(oracle, n, cfg.length, view.n_items, surrogate.pad, cfg.synthesis,
                          np.random.default_rng([seed, 0xDF]))
        finetune_on_lists(surrogate, Prefixes(data.sequences, surrogate.pad, surrogate.device),
                          data.flat_lists(), cfg, seed=seed)
        return ExtractionResult(surrogate, synthetic_sequences=n)
