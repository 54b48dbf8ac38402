"""Options shared by commands, and the one place user errors become a message and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from recsec.harness import settings
from recsec.harness.errors import RecsecError

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
# Defaults resolve at call time (not import time) so a changed env var or cwd is honoured.
DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", envvar="RECSEC_DATA_DIR", show_default="$RECSEC_DATA_DIR or ./data",
    help="Folder holding one sub-folder per dataset (ml-1m/, ml-100k/, ...).")]
CacheDir = Annotated[Optional[Path], typer.Option(
    "--cache-dir", envvar="RECSEC_CACHE_DIR", show_default="$RECSEC_CACHE_DIR or ./.recsec-cache",
    help="Preprocessed datasets and trained targets.")]

Overrides = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a grid key, the value read as YAML (repeatable): --set seeds=[0] --set split.holdout=0.1.")]

AcceptStale = Annotated[bool, typer.Option(
    "--accept-stale",
    help="Reuse finished cells and cached models made by code that has changed since (default: redo them).")]


def tracking_uri(value: str | None) -> str:
    return value or settings.default_tracking_uri()


def data_dir(value: Path | None) -> Path:
    return value or settings.default_data_dir()


def cache_dir(value: Path | None) -> Path:
    return value or settings.default_cache_dir()


def fail(message: str, code: int = EXIT_INVALID) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report a user-fixable error as one line on stderr with exit code 2, no traceback."""
    try:
        yield
    except RecsecError as exc:
        raise fail(str(exc)) from None
