"""Content-addressed cache of preprocessed datasets, and `load_dataset`, the cached entry point.

The key is a sha256 of everything the result depends on: the raw files' bytes, the dataset name,
the preprocessing config, the loader params and `CACHE_VERSION`. A changed file or option gives
a new key, so stale entries are never read (only left behind). Entries are `.npz` files written
to a temp file and renamed, so a crash or a concurrent worker never sees half a file.
"""

from __future__ import annotations

import dataclasses

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsec.harness.data.interactions import Interactions
from recsec.harness.data.loaders import get_dataset
from recsec.harness.data.preprocess import build_interactions
from recsec.harness.errors import DataError
from recsec.harness.settings import default_cache_dir, default_data_dir

CACHE_VERSION = 1
"""Bump when loaders or preprocessing change what they produce, to invalidate old entries."""

_HASH_BLOCK = 1 << 20


def dataset_digest(
    name: str,
    *,
    data_dir: Path | None = None,
    min_user_interactions: int = 5,
    min_item_interactions: int = 5,
    params: dict[str, Any] | None = None,
) -> str:
    """sha256 hex digest identifying the preprocessed dataset, computed without parsing it."""
    spec = get_dataset(name)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    config = {
        "cache_version": CACHE_VERSION,
        "dataset": name,
        "min_user_interactions": int(min_user_interactions),
        "min_item_interactions": int(min_item_interactions),
        "params": params or {},
    }
    try:
        header = json.dumps(config, sort_keys=True, separators=(",", ":"))
    except TypeError as exc:
        raise DataError(f"dataset {name!r}: params must be JSON-serializable ({exc})") from None
    digest = hashlib.sha256(header.encode())
    for path in spec.locate(data_dir):
        digest.update(f"\0{path.name}\0".encode())  # the name matters: ratings.dat vs .csv.gz
        try:
            with open(path, "rb") as handle:
                while block := handle.read(_HASH_BLOCK):
                    digest.update(block)
        except OSError as exc:
            raise DataError(f"{path}: unreadable ({exc})") from None
    return digest.hexdigest()


def load_dataset(
    name: str,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    min_user_interactions: int = 5,
    min_item_interactions: int = 5,
    params: dict[str, Any] | None = None,
) -> Interactions:
    """Load `name` from `data_dir`, k-core filtered and remapped, through the cache.

    The first call parses the raw files and writes `cache_dir/datasets/<digest>.npz`; later calls
    with the same files and options read that file. `meta["digest"]` holds the key.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = dataset_digest(name, data_dir=data_dir, params=params,
                            min_user_interactions=min_user_interactions,
                            min_item_interactions=min_item_interactions)
    path = entry_path(cache_dir, digest)
    if path.exists():
        try:
            return _with_source(read_interactions(path), data_dir, cache_dir)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            # A damaged entry is only a lost speed-up: rebuild it rather than fail the run.
            warnings.warn(f"ignoring unreadable cache entry {path}: {exc}", stacklevel=2)

    raw = get_dataset(name).load(data_dir, params)
    interactions = build_interactions(
        raw,
        name=name,
        min_user_interactions=min_user_interactions,
        min_item_interactions=min_item_interactions,
        meta={"digest": digest, "params": params or {},
              "files": [file.name for file in raw.files]},
    )
    write_interactions(interactions, path)
    return _with_source(interactions, data_dir, cache_dir)


def _with_source(interactions: Interactions, data_dir: Path, cache_dir: Path) -> Interactions:
    """Where this run found the raw files and keeps its cache (not stored in the cache entry,
    which any data_dir with the same files may read): tasks that read more than interactions
    (item images, their CNN features) use these, on whichever node they run."""
    meta = {**interactions.meta, "source_dir": str(Path(data_dir).resolve()),
            "cache_dir": str(Path(cache_dir).resolve())}
    return dataclasses.replace(interactions, meta=meta)


def entry_path(cache_dir: Path, digest: str) -> Path:
    """Where the cache keeps the dataset with this digest."""
    return Path(cache_dir) / "datasets" / f"{digest}.npz"


def write_interactions(interactions: Interactions, path: Path) -> None:
    """Save to `.npz` atomically: write a temp file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    matrix = interactions.matrix
    arrays: dict[str, np.ndarray] = {
        "indptr": matrix.indptr,
        "indices": matrix.indices,
        "shape": np.asarray(matrix.shape, dtype=np.int64),
        "name": np.asarray(interactions.name),
        "meta": np.asarray(json.dumps(interactions.meta, sort_keys=True)),
    }
    for key in ("timestamps", "user_labels", "item_labels"):
        value = getattr(interactions, key)
        if value is not None:
            arrays[key] = np.asarray(value)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_interactions(path: Path) -> Interactions:
    """Inverse of `write_interactions` (no pickle: entries hold plain arrays only)."""
    with np.load(path, allow_pickle=False) as archive:
        indptr, indices = archive["indptr"], archive["indices"]
        shape = tuple(int(n) for n in archive["shape"])
        data = np.ones(len(indices), dtype=np.float32)
        matrix = sp.csr_matrix((data, indices, indptr), shape=shape)
        matrix.has_sorted_indices = True
        optional = {key: archive[key] for key in ("timestamps", "user_labels", "item_labels")
                    if key in archive.files}
        return Interactions(matrix=matrix, name=str(archive["name"]),
                            meta=json.loads(str(archive["meta"])), **optional)
