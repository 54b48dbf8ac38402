"""Content-addressed cache of trained targets, shared by every grid (and every node, when the
cache directory is on a shared filesystem). Writes are atomic: temp file, then rename. Beside
each model, `<hash>.code` names the code that trained it (harness.code_identity), read without
loading the model so that a plan can tell a current model from a stale one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from recsec.harness.records import TargetRecord


class TargetCache:
    def __init__(self, root: Path | str):
        self.root = Path(root) / "targets"

    def path(self, target_hash: str) -> Path:
        return self.root / f"{target_hash}.pt"

    def __contains__(self, target_hash: str) -> bool:
        return self.path(target_hash).is_file()

    def code_of(self, target_hash: str) -> str | None:
        """The fingerprint of the code that trained it; None if unknown (made before codes were kept)."""
        try:
            return self.path(target_hash).with_suffix(".code").read_text().strip() or None
        except OSError:
            return None

    def get(self, target_hash: str) -> TargetRecord | None:
        path = self.path(target_hash)
        if not path.is_file():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a torn or foreign file: retrain rather than fail the grid
            return None
        lists = blob.get("lists")
        return TargetRecord(target_hash, blob["payload"], blob["metrics"], blob.get("params", {}),
                            lists=None if lists is None else lists.numpy())

    def put(self, record: TargetRecord, code: str | None = None) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(record.target_hash)
        blob = {"payload": record.payload, "metrics": record.metrics, "params": record.params}
        if record.lists is not None:
            # A record from Ray's object store is read-only; torch.save only reads it, but warns.
            blob["lists"] = torch.from_numpy(np.array(record.lists, copy=True))
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{record.target_hash}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(blob, handle)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._write_code(record.target_hash, code)
        return path

    def _write_code(self, target_hash: str, code: str | None) -> None:
        side = self.path(target_hash).with_suffix(".code")
        if code is None:
            side.unlink(missing_ok=True)
            return
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{target_hash}.", suffix=".code.tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(code)
        os.replace(tmp, side)
