"""What every output defense is: a configured callable `(lists, users, context, rng) -> lists`
that the oracle applies to every list before serving it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np


class OutputDefense:
    kind: ClassVar[str] = "output"
    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, config=None):
        self.config = config if config is not None else self.Config()

    def __call__(self, lists: np.ndarray, users: np.ndarray, context, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError
