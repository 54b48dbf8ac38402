"""Options shared by commands, and the one place user errors become a message and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness import settings

EXIT_OK, EXIT_CELLS_FAILED, EXIT_INVALID = 0, 1, 2

TrackingUri = Annotated[
    Optional[str],
    typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                 help="MLflow tracking URI. Default: sqlite:///./mlflow.db."),
]
RayAddress = Annotated[
    Optional[str],
    typer.Option("--ray-address", envvar="RAY_ADDRESS", help="Existing Ray cluster. Default: start a local Ray."),
]
DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", envvar="RECSEC_DATA_DIR", help="Raw datasets. Default: ./data."),
]
CacheDir = Annotated[
    Optional[Path],
    typer.Option("--cache-dir", envvar="RECSEC_CACHE_DIR",
                 help="Preprocessed data and trained targets. Default: ./.recsec-cache."),
]


def tracking_uri(value: str | None) -> str:
    return value or settings.default_tracking_uri()


def data_dir(value: Path | None) -> Path:
    return value or settings.default_data_dir()


def cache_dir(value: Path | None) -> Path:
    return value or settings.default_cache_dir()


def fail(message: str, code: int = EXIT_INVALID) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
