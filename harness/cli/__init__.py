"""The `recsec` command: one typer app, one sub-app per command group."""

from __future__ import annotations

import sys

import typer

from recsec.harness.cli import data as data_cli
from recsec.harness.cli.grid_commands import plan, run, status
from recsec.harness.cli.results import export, leaderboard, report, tables
from recsec.harness.cli.listing import app as list_app

app = typer.Typer(
    help="Benchmark security and privacy attacks on recommender systems, and defenses against them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(run)
app.command()(plan)
app.command()(status)
app.command()(report)
app.command()(leaderboard)
app.command()(export)
app.command()(tables)
app.add_typer(data_cli.app, name="data", help="Datasets: list, inspect, download.")
app.add_typer(list_app, name="list", help="List registered models, attacks, defenses, datasets.")


def main() -> None:
    app()


__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
