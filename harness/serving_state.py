"""What a target's server holds, as a family's `grant` and `oracle` see it."""

from __future__ import annotations

import threading
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
    _building: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def once(self, key: str, build):
        """`build()`, once per key: a server answers several cells at a time (threads), and the
        cells of one target that open together wait for one split, not build one each."""
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self.memo:
                self.memo[key] = build()
        return self.memo[key]
