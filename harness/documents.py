"""Tables in Markdown documents as build output (`recsec tables FILE.md...`): every table between
a `recsec:table` (or `recsec:verdicts`) marker and `recsec:end` is made again from the records the
marker names, so a document's numbers are exactly what its committed records give. `--check`
fails when a document's table differs from them.

A marker is an HTML comment (invisible when the Markdown renders) holding YAML:

    <!-- recsec:table
    records: records/stealing-main-ml1m/*.jsonl.gz   # globs, relative to the document
    metric: agr_at_50                                # a pivot: metric over rows x cols
    rows: attack
    cols: target
    where: {defense: none}                           # a label, its name ("bpr"), or a list
    -->
    ...the generated table...
    <!-- recsec:end -->

Instead of `metric` and `cols`, `metrics: [agr_at_50, agr_at_10]` gives one column per metric;
`summary: true` gives the table `recsec run` prints (`fence: true`: inside a code block).
A `recsec:verdicts` marker lists claims of a paper (`claim`, `published`, `verdict`, `why`, and
the `metric` and `where` of our number) and makes a table of the published figure beside ours.
Under each table a line says what it rests on: the grids, seeds, commits and devices of its
records, and how its intervals and marks were made.
"""

from __future__ import annotations

import difflib
import glob
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from recsec.harness import record_file, report
from recsec.harness.errors import RecsecError
from recsec.harness.significance import Estimate
from recsec.harness.stats import METHOD_BOOTSTRAP

# A marker starts a line; its YAML holds no "-->"; the generated text runs to the end marker.
BLOCK = re.compile(r"^(<!-- recsec:(table|verdicts)\b((?:(?!-->).)*?)-->\n)(.*?)^(<!-- recsec:end -->)",
                   re.DOTALL | re.MULTILINE)
NOTE = ("Intervals 95%: t over seeds (one seed: bootstrap over its units). A superscript letter names a row the "
        "value is significantly above (paired t over seeds, Holm over the table; harness/stats.py).")


@dataclass
class Outcome:
    path: Path
    tables: int
    changed: list[str]  # a diff per table that differs from its records


def build(paths: list[Path], check: bool = False) -> list[Outcome]:
    """Regenerate every marked table of these documents (or, with `check`, only compare)."""
    outcomes = []
    for path in map(Path, paths):
        if not path.is_file():
            raise RecsecError(f"{path}: no such document")
        text = path.read_text()
        changed, count = [], 0

        def replace(match: re.Match) -> str:
            nonlocal count
            count += 1
            where = f"{path}:{text[:match.start()].count(chr(10)) + 1}"
            generated = render_block(match.group(2), match.group(3), path.parent, where)
            if generated.strip() != match.group(4).strip():
                changed.append(where + "\n" + "\n".join(difflib.unified_diff(
                    match.group(4).strip().splitlines(), generated.strip().splitlines(), "document", "records",
                    lineterm="", n=0)))
            return match.group(1) + generated + match.group(5)

        new_text = BLOCK.sub(replace, text)
        if not check and new_text != text:
            path.write_text(new_text)
        outcomes.append(Outcome(path, count, changed))
    return outcomes


def render_block(kind: str, raw_spec: str, folder: Path, where: str) -> str:
    try:
        spec = yaml.safe_load(raw_spec) or {}
    except yaml.YAMLError as exc:
        raise RecsecError(f"{where}: the marker is not YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise RecsecError(f"{where}: the marker holds {type(spec).__name__}, not a mapping")
    try:
        return (_verdicts if kind == "verdicts" else _table)(spec, folder, where)
    except RecsecError as exc:
        raise RecsecError(f"{where}: {exc}") from None


def _table(spec: dict, folder: Path, where: str) -> str:
    frame, records = _cells(spec, folder, where)
    digits = int(spec.get("digits", 3))
    rows = spec.get("rows", "attack")
    if spec.get("summary"):  # the table `recsec run` prints at its end
        table = report.summary(frame, report.main_k(frame))
        text = report.to_markdown(table, index=False)
        return (f"```\n{text}\n```" if spec.get("fence") else text) + "\n\n" + provenance(records) + "\n"
    if "metrics" in spec:
        table = report.metric_table(frame, list(spec["metrics"]), rows, digits)
        table = table.rename(columns=spec.get("headers", {}))
    elif "metric" in spec:
        table = report.pivot(frame, spec["metric"], rows, spec.get("cols", "target"), digits)
        table = table.rename(columns=_short_names(table.columns[2:] if "row" in table else table.columns[1:]))
    else:
        raise RecsecError("a table marker names `metric` (with `rows`, `cols`) or `metrics` (with `rows`)")
    table[rows] = table[rows].map(_short_names(table[rows]))
    return report.to_markdown(table, index=False) + "\n\n" + provenance(records) + "\n"


def _verdicts(spec: dict, folder: Path, where: str) -> str:
    """The published figure beside ours, one row per claim: our mean and interval, its seeds,
    dataset and device, and the verdict with its reason."""
    out = []
    used: list[dict] = []
    for i, claim in enumerate(spec.get("claims") or []):
        missing = [k for k in ("claim", "published", "verdict", "why") if k not in claim]
        if missing:
            raise RecsecError(f"claims[{i}]: missing {', '.join(missing)}")
        ours, setting = "not run", ""
        if "metric" in claim:
            frame, records = _cells({**spec, **claim}, folder, f"{where} claims[{i}]")
            used += records
            table = report.metric_table(frame, [claim["metric"]], "attack", int(claim.get("digits", 3)))
            if len(table) != 1:
                raise RecsecError(f"claims[{i}]: `where` leaves {len(table)} attacks; name one")
            estimate = table[claim["metric"]].iloc[0]
            seeds = sorted({r["seed"] for r in records})
            ours = f"{estimate.interval.text(estimate.digits)}, {len(seeds)} seed{'s' if len(seeds) > 1 else ''}" \
                if isinstance(estimate, Estimate) else ""
            if isinstance(estimate, Estimate) and estimate.interval.method == METHOD_BOOTSTRAP:
                ours = ours.replace(" (1 seed)", "")
            setting = ", ".join(sorted({r["dataset"]["name"] for r in records})) + "; " + \
                ", ".join(sorted({_device(r["device"]) for r in records}))
        out.append({"claim": claim["claim"], "published": str(claim["published"]), "ours (95% interval)": ours,
                    "data; device": setting or claim.get("setting", ""), "verdict": claim["verdict"],
                    "why": claim["why"]})
    table = pd.DataFrame(out)
    note = provenance(used) if used else ""
    return report.to_markdown(table, index=False) + ("\n\n" + note if note else "") + "\n"


def _cells(spec: dict, folder: Path, where: str) -> tuple[pd.DataFrame, list[dict]]:
    patterns = spec.get("records")
    if not patterns:
        raise RecsecError("name the records (`records: [glob, ...]`, relative to the document)")
    paths = sorted({p for pattern in ([patterns] if isinstance(patterns, str) else patterns)
                    for p in glob.glob(str(folder / pattern))})
    if not paths:
        raise RecsecError(f"no records match {patterns}")
    records = [r for r in record_file.read(paths) if _selected(r, spec.get("where") or {})]
    if not records:
        raise RecsecError(f"no record of {', '.join(paths)} matches where {spec.get('where')}")
    return record_file.frame(records).drop_duplicates(["experiment", "tags.recsec.cell_hash"], keep="last"), records


def _selected(record: dict, where: dict) -> bool:
    for axis, wanted in where.items():
        label = str(record["axes"].get(axis, record.get(axis, "")))
        values = wanted if isinstance(wanted, list) else [wanted]
        if not any(label == str(v) or (("(" not in str(v)) and label.split("(")[0] == str(v)) for v in values):
            return False
    return True


def _short_names(labels) -> dict:
    """Component labels without their parameters, where that leaves them distinct."""
    labels = [str(v) for v in labels]
    short = {v: v.split("(")[0] for v in labels}
    return short if len(set(short.values())) == len(labels) else {v: v for v in labels}


def provenance(records: list[dict]) -> str:
    """What a table rests on: its grids (and overrides), seeds, commits and devices."""
    grids = sorted({r["grid"]["file"] or r["grid"]["name"] for r in records})
    seeds = sorted({int(r["seed"]) for r in records})
    commits = sorted({_commit(r["code"]["commit"]) for r in records})
    devices = sorted({_device(r["device"]) for r in records})
    return (f"_Records: {', '.join(grids)}; seeds {_ranges(seeds)}; commit {', '.join(commits)}; "
            f"{', '.join(devices)}. {NOTE}_")


def _commit(commit: str) -> str:
    if not commit:
        return "unknown"
    return commit[:10] + (" with uncommitted changes" if commit.endswith(".dirty") else "")


def _device(device: str) -> str:
    return "CPU" if device == "cpu" else device.removeprefix("cuda: ")


def _ranges(values: list[int]) -> str:
    if values and values == list(range(values[0], values[-1] + 1)) and len(values) > 2:
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))
