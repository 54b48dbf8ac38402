"""`recsec data ...`: list, inspect and download datasets."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Optional

import typer

from recsec.harness.data import dataset_digest, dataset_names, get_dataset, load_dataset
from recsec.harness.data.cache import entry_path
from recsec.harness.data.download import BASE_URL_ENV, download_dataset
from recsec.harness.cli.common import CacheDir as CacheDirOption
from recsec.harness.cli.common import DataDir as DataDirOption
from recsec.harness.cli.common import user_errors as _user_errors
from recsec.harness.errors import RecsecError
from recsec.harness.settings import default_cache_dir, default_data_dir

app = typer.Typer(help="List, inspect and download datasets.", no_args_is_help=True)

@app.command("list")
def list_datasets(data_dir: DataDirOption = None, cache_dir: CacheDirOption = None) -> None:
    """Show every dataset, whether its files are in the data dir (and cached), and what it is."""
    data_dir = data_dir or default_data_dir()
    cache_dir = cache_dir or default_cache_dir()
    with _user_errors():
        names = dataset_names()
        width = max(map(len, names))
        for name in names:
            spec = get_dataset(name)
            if not spec.files_present(data_dir):
                status = "missing"
            else:
                status = "built-in" if not spec.locate(data_dir) else "present"
                if entry_path(cache_dir, dataset_digest(name, data_dir=data_dir)).exists():
                    status += ", cached"
            typer.echo(f"{name:<{width}}  {status:<17}  {spec.description}")
        typer.echo(f"(data dir: {data_dir}; cached = preprocessed with the default 5/5-core)")


@app.command()
def info(
    name: Annotated[str, typer.Argument(help="Dataset name (see `list`).")],
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
    min_user: Annotated[int, typer.Option(help="Drop users with fewer interactions.")] = 5,
    min_item: Annotated[int, typer.Option(help="Drop items with fewer interactions.")] = 5,
    param: Annotated[Optional[list[str]], typer.Option(
        help="Loader parameter KEY=VALUE (VALUE parsed as JSON if it can be), repeatable; "
             "e.g. --param seed=3 for synthetic.")] = None,
) -> None:
    """Load and preprocess a dataset (through the cache) and print its size."""
    with _user_errors():
        params = _parse_params(param or [])
        start = time.perf_counter()
        data = load_dataset(name, data_dir=data_dir or default_data_dir(),
                            cache_dir=cache_dir or default_cache_dir(),
                            min_user_interactions=min_user, min_item_interactions=min_item,
                            params=params or None)
        seconds = time.perf_counter() - start
    meta = data.meta
    typer.echo(f"dataset:      {data.name}")
    typer.echo(f"users:        {data.n_users:,}")
    typer.echo(f"items:        {data.n_items:,}")
    typer.echo(f"interactions: {data.n_interactions:,}")
    typer.echo(f"density:      {data.density:.4%}")
    typer.echo(f"timestamps:   {'yes' if data.timestamps is not None else 'no'}")
    typer.echo(f"raw:          {meta.get('raw_rows', 0):,} rows, {meta.get('raw_users', 0):,} "
               f"users, {meta.get('raw_items', 0):,} items before the "
               f"{min_user}/{min_item}-core")
    typer.echo(f"digest:       {meta.get('digest', '?')}")
    typer.echo(f"loaded in:    {seconds:.2f} s")


@app.command()
def download(
    name: Annotated[str, typer.Argument(help="ml-1m or ml-100k.")],
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
    base_url: Annotated[Optional[str], typer.Option(
        envvar=BASE_URL_ENV, show_default="GroupLens",
        help="Mirror to fetch the archive from.")] = None,
    force: Annotated[bool, typer.Option(help="Download even if the files are present.")] = False,
) -> None:
    """Fetch the official GroupLens archive, verify its checksum and extract it."""
    del cache_dir  # accepted so every `data` command takes the same options; nothing is cached
    with _user_errors():
        target = download_dataset(name, data_dir or default_data_dir(), base_url=base_url,
                                  force=force)
    typer.echo(f"{name}: files in {target}")


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RecsecError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params
