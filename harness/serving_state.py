"""What a target's server holds, as a family's `grant` and `oracle` see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServingState:
    """What a server holds for its target: the data, the trained target's record, the device,
    and a memo where a family keeps what it builds once per target (the loaded model)."""

    data: Any
    target: Any
    device: str = "cpu"
    memo: dict = field(default_factory=dict)

    def once(self, key: str, build):
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]
