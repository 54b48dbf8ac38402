"""What every output defense is: a configured callable `(lists, users, context, rng) -> lists`
that the oracle applies to every list before serving it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from recsec.defenses.base import Defense


class OutputDefense(Defense):
    kind: ClassVar[str] = "output"

    def __call__(self, lists: np.ndarray, users: np.ndarray, context, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def check_list_length(self, k: int) -> None:
        """Raise ValueError if this defense cannot serve lists of `k` items as configured."""
