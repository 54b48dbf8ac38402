"""`recsec report|leaderboard|export`: the commands that read results, from MLflow or from
records (harness.record_file), and show each mean with its interval and which differences are
significant (harness.stats)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from recsec.harness.cli.common import TrackingUri, fail, tracking_uri, user_errors


class Format(str, Enum):
    md = "md"
    csv = "csv"
    html = "html"


class Plot(str, Enum):
    line = "line"
    heatmap = "heatmap"


MlflowUrl = Annotated[Optional[str], typer.Option(
    "--mlflow-url", help="MLflow UI that links point to. Default: the tracking URI when it is a server, "
                         "else http://127.0.0.1:5000 (what `mlflow ui` serves).")]
Records = Annotated[Optional[list[Path]], typer.Option(
    "--records", help="Read cell records (JSON lines, .jsonl or .jsonl.gz, as `recsec export` writes them) "
                      "instead of MLflow: a file, a folder of them, or a quoted glob; repeatable.")]


def _mlflow_url(value: str | None, uri: str) -> str:
    return value or (uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000")


def _write(text: str, output: Path | None) -> None:
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + ("\n" if not text.endswith("\n") else ""))
        typer.echo(f"wrote {output}")
    else:
        typer.echo(text)


def _cells(grids: list[str] | None, records: list[Path] | None, tracking: str | None, one_grid: bool):
    """The cells to report, from records or MLflow, and where they came from (for the page)."""
    from recsec.harness import report as rep
    from recsec.harness.errors import RecsecError

    if records:
        frame = rep.records_cells(records, grids or None)
        if one_grid and frame["experiment"].nunique() > 1:
            raise RecsecError(f"the records hold grids {', '.join(sorted(frame['experiment'].unique()))}: "
                              f"name one with --grid")
        return frame, f"records {', '.join(map(str, records))}"
    if not grids:
        raise RecsecError("name a grid (--grid FILE or experiment name) or records (--records FILE)")
    uri = tracking_uri(tracking)
    return rep.cell_frame(uri, grids[0] if one_grid else grids), f"MLflow {uri}"


def report(
    grid: Annotated[Optional[str], typer.Option(
        "--grid", help="Grid file or MLflow experiment name (with --records: which grid of the records).")] = None,
    metric: Annotated[Optional[str], typer.Option(
        "--metric", help="Metric to pivot or compare, e.g. agr_at_50, recall_at_50. Without it: the run's summary "
                         "table (or, with --compare, the family's success).")] = None,
    rows: Annotated[str, typer.Option("--rows", help="Axis along the rows.")] = "attack",
    cols: Annotated[str, typer.Option("--cols", help="Axis along the columns.")] = "defense",
    compare: Annotated[Optional[list[str]], typer.Option(
        "--compare", metavar="AXIS=VALUE[,AXIS=VALUE]",
        help="Twice: the two rows to test against each other, e.g. --compare attack=A --compare attack=B.")] = None,
    versus: Annotated[Optional[str], typer.Option(
        "--versus", metavar="ROW", help="With --metric: compare each row with this one only (e.g. a baseline "
                                        "attack), not every pair: fewer comparisons to correct for.")] = None,
    where: Annotated[Optional[list[str]], typer.Option(
        "--where", metavar="AXIS=VALUE", help="Only cells whose AXIS label is VALUE (repeatable).")] = None,
    fmt: Annotated[Format, typer.Option(
        "--format", help="md, csv, or html: one self-contained page with the summary, curves, heatmaps and "
                         "the defenses' trade-off (and the --metric pivot if given).")] = Format.md,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    plot: Annotated[Optional[Plot], typer.Option(
        "--plot", help="Draw a PNG to --output instead: `line` (metric against --cols, one line per "
                       "--rows value) or `heatmap` (--rows x --cols).")] = None,
    records: Records = None,
    tracking: TrackingUri = None,
    mlflow_url: MlflowUrl = None,
):
    """Tables and figures of one grid, from MLflow or records: each mean over seeds with its 95%
    interval, and the rows that differ significantly marked (see harness/stats.py)."""
    from recsec.harness import report as rep

    if plot is not None and (output is None or metric is None):
        raise fail("--plot needs --metric and --output FILE.png")
    if compare is not None and len(compare) != 2:
        raise fail(f"--compare takes two rows (given {len(compare)}): --compare AXIS=VALUE --compare AXIS=VALUE")
    with user_errors():
        frame, source = _cells([grid] if grid else None, records, tracking, one_grid=True)
        frame = rep.where(frame, where or [])
        if compare is not None:
            from recsec.harness.compare import compare_rows, render

            _write(render(compare_rows(frame, compare[0], compare[1], metric), fmt.value), output)
            return
        if fmt is Format.html:
            from recsec.harness.grid_report import grid_page

            pivots = [(metric, rows, cols)] if metric else []
            url = None if records else _mlflow_url(mlflow_url, tracking_uri(tracking))
            _write(grid_page(frame, source, url, pivots), output)
            return
        if plot is not None:
            from recsec.harness import plots

            draw = plots.line_plot if plot is Plot.line else plots.heatmap
            args = (frame, metric, cols, rows) if plot is Plot.line else (frame, metric, rows, cols)
            typer.echo(f"wrote {draw(*args, output)}")
            return
        if metric is None:
            table = rep.summary(frame, rep.main_k(frame))
            text = rep.to_markdown(table, index=False) + "\n\n" + rep.READING if fmt is Format.md \
                else rep.to_csv(table)
        elif fmt is Format.md:
            note = rep.pooled_note(frame, [rows, cols])
            text = rep.to_markdown(rep.pivot(frame, metric, rows, cols, versus=versus), index=False) + "\n\n" \
                + (note + "\n" if note else "") + rep.READING
        else:
            text = rep.pivot_long(frame, metric, rows, cols, versus).to_csv(index=False)
    _write(text, output)


def leaderboard(
    grid: Annotated[Optional[list[str]], typer.Option(
        "--grid", help="Grid file or experiment name; repeat for several. Default: every experiment "
                       "(every grid of the --records).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="md, csv (one row per entry) or html.")] = Format.md,
    k: Annotated[int, typer.Option("--k", min=1, help="K of Agr@K, CHR@K and the utility (nearest measured).")] = 10,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    records: Records = None,
    tracking: TrackingUri = None,
    mlflow_url: MlflowUrl = None,
):
    """Attacks x defenses per family, across grids: the attack's success under each defense, the
    defense's utility cost and protection (each with its 95% interval), the defenses ranked (ties
    share a rank), the Pareto-optimal ones, and links to every run."""
    from recsec.harness import leaderboard as board
    from recsec.harness import leaderboard_render as render
    from recsec.harness import report as rep

    uri = tracking_uri(tracking)
    with user_errors():
        frame = rep.records_cells(records, grid or None) if records else board.load_cells(uri, grid)
        url = (mlflow_url if records else _mlflow_url(mlflow_url, uri))
        boards = board.build(frame, k=k, mlflow_url=url)
    if fmt is Format.md:
        text = render.to_markdown_text(boards)
    elif fmt is Format.csv:
        text = render.to_csv_text(boards)
    else:
        text = render.to_html_text(boards, source=f"records {', '.join(map(str, records))}" if records else uri)
    _write(text, output)


def export(
    grid: Annotated[str, typer.Argument(help="Grid file or MLflow experiment name.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The records file (.jsonl, or .jsonl.gz "
                                                                "compressed).")],
    tracking: TrackingUri = None,
):
    """Write GRID's finished cells as records (one JSON line each: metrics, per-unit values, axes,
    config, grid, commit, code, packages, device, node, wall time), the latest run of each cell.
    `recsec report --records FILE` then builds every table from them, with no MLflow."""
    from recsec.harness import record_file
    from recsec.harness.export import exported_records

    with user_errors():
        records, rebuilt = exported_records(tracking_uri(tracking), grid)
        count = record_file.write(output, records)
    note = f" ({rebuilt} logged before cells kept records: rebuilt from the run, without per-unit values)" \
        if rebuilt else ""
    typer.echo(f"wrote {count} records to {output}{note}")


def tables(
    documents: Annotated[list[Path], typer.Argument(help="Markdown files with recsec:table markers.",
                                                    show_default=False)],
    check: Annotated[bool, typer.Option(
        "--check", help="Change nothing; exit 1 when a table differs from what its records give.")] = False,
):
    """Make every marked table of these Markdown documents again from the records its marker
    names (see harness/documents.py), so each figure is what its committed records give."""
    from recsec.harness.documents import build

    with user_errors():
        outcomes = build(documents, check=check)
    stale = [c for o in outcomes for c in o.changed]
    for outcome in outcomes:
        state = (f"{len(outcome.changed)} of {outcome.tables} tables differ from their records" if check
                 else f"{outcome.tables} tables, {len(outcome.changed)} rewritten")
        typer.echo(f"{outcome.path}: {state}")
    if check and stale:
        typer.echo("\n\n".join(stale), err=True)
        raise typer.Exit(1)
