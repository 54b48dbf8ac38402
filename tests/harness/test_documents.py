"""Documents as build output (harness.documents, `recsec tables`): every table of the README and
of benchmarks/reproduction/ is what its committed records give, and a number edited by hand, a
marker naming no records, or records that are not records are caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsec.harness.cli import app
from recsec.harness.documents import build

from helpers import REPO
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "benchmarks" / "reproduction").glob("*.md"))]
QUICKSTART = REPO / "benchmarks" / "reproduction" / "records" / "quickstart"


def test_every_table_of_the_documents_is_what_its_records_give():
    outcomes = build(DOCUMENTS, check=True)
    stale = [change for outcome in outcomes for change in outcome.changed]
    assert not stale, "run `recsec tables README.md benchmarks/reproduction/*.md`:\n" + "\n\n".join(stale)
    made = {outcome.path.name: outcome.tables for outcome in outcomes}
    # Each reproduction document opens with its verdicts and rests on generated tables.
    assert made["README.md"] >= 1
    assert all(made[name] >= 2 for name in ("stealing.md", "extraction.md", "membership.md", "poisoning.md")), made


def document(tmp_path: Path, marker: str) -> Path:
    shutil.copytree(QUICKSTART, tmp_path / "records")
    path = tmp_path / "doc.md"
    path.write_text(f"# A note\n\n<!-- recsec:table\nrecords: records/*.jsonl.gz\n{marker}-->\n<!-- recsec:end -->\n")
    return path


def test_a_number_edited_by_hand_is_caught_and_written_back(tmp_path):
    path = document(tmp_path, "metric: agr_at_50\nrows: attack\ncols: defense\n")
    runner = CliRunner()
    assert runner.invoke(app, ["tables", str(path)]).exit_code == 0
    made = path.read_text()
    assert "| ptq |" in made and "seeds 0-2" in made  # the short name, and what the table rests on
    assert runner.invoke(app, ["tables", str(path), "--check"]).exit_code == 0
    line = next(x for x in made.splitlines() if x.startswith("| b | ptq |"))
    path.write_text(made.replace(line, line.replace("0.9", "0.8", 1)))
    checked = runner.invoke(app, ["tables", str(path), "--check"])
    assert checked.exit_code == 1 and "1 of 1 tables differ from their records" in checked.stdout
    assert runner.invoke(app, ["tables", str(path)]).exit_code == 0 and path.read_text() == made


@pytest.mark.parametrize("marker, message", [
    ("metric: agr_at_50\nrows: attack\ncols: defense\nwhere: {attack: nothing}\n", "no record of"),
    ("rows: attack\n", "names `metric`"),
    ("metric: [unclosed\n", "not YAML"),
])
def test_a_bad_marker_is_refused_with_the_document_and_line(tmp_path, marker, message):
    path = document(tmp_path, marker)
    result = CliRunner().invoke(app, ["tables", str(path), "--check"])
    assert result.exit_code == 2 and f"{path}:3:" in result.output and message in result.output
