"""Training claims in the shared cache directory: when several drivers (grids submitted at once,
from any node that mounts the cache) need the same target, one trains it and the others wait for
it to appear in the cache instead of training it again.

A claim is a file created exclusively (O_EXCL, atomic on local and NFSv3+ filesystems); its
holder touches it while it trains. A claim left untouched for `STALE_AFTER_S` belongs to a dead
driver and may be taken over."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from recsec.harness.heartbeat import STALE_AFTER_S


class TrainingClaims:
    def __init__(self, cache_root: Path | str, owner: str):
        self.root = Path(cache_root) / "claims"
        self.owner = owner  # e.g. the grid's name, shown to whoever waits
        self.held: set[str] = set()

    def path(self, model_hash: str) -> Path:
        return self.root / f"{model_hash}.claim"

    def acquire(self, model_hash: str) -> bool:
        """True if this driver now holds the claim (free, or stale and taken over)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(model_hash)
        if self._stale(path):
            # Two drivers may both see it stale and both end up training: wasted work, no harm,
            # since cache writes are atomic.
            path.unlink(missing_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "owner": self.owner,
                       "since": time.time()}, handle)
        self.held.add(model_hash)
        return True

    def holder(self, model_hash: str) -> dict | None:
        """Who holds a live claim on it, or None when it is free or stale."""
        path = self.path(model_hash)
        if self._stale(path):
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # released meanwhile, or being written
            return None if not path.exists() else {"owner": "?"}

    def refresh(self) -> None:
        """Touch every claim held, so that waiting drivers know this one is alive."""
        for model_hash in self.held:
            try:
                os.utime(self.path(model_hash))
            except FileNotFoundError:  # taken over after a stall: whoever holds it now trains
                pass

    def release(self, model_hash: str) -> None:
        if model_hash in self.held:
            self.held.discard(model_hash)
            self.path(model_hash).unlink(missing_ok=True)

    def release_all(self) -> None:
        for model_hash in list(self.held):
            self.release(model_hash)

    @staticmethod
    def _stale(path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime > STALE_AFTER_S
        except FileNotFoundError:
            return False
