"""Where things live by default. Every default can be overridden by a CLI option or env var."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """Raw datasets: `$RECSEC_DATA_DIR`, else `./data` in the working directory."""
    return Path(os.environ.get("RECSEC_DATA_DIR") or "data").expanduser()


def default_cache_dir() -> Path:
    """Preprocessed data and trained models: `$RECSEC_CACHE_DIR`, else `./.recsec-cache`."""
    return Path(os.environ.get("RECSEC_CACHE_DIR") or ".recsec-cache").expanduser()


def default_tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else MLflow's own default: sqlite in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
