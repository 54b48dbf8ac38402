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

`versus: ptd` compares each row with that one only, not every pair (fewer comparisons to
correct for); `order: [qsd, ptd, ...]` puts rows in that order; `rows: [attack, clone]` labels a
row by both (`ptd / pop` names it in `versus` and `order`; a clone of the target's architecture is
`same`), and `within: [target]` compares only the rows that share a target. Instead of `metric` and `cols`, `metrics: [agr_at_50, agr_at_10]` gives one column per metric;
`summary: true` gives the table `recsec run` prints (`fence: true`: inside a code block).
A `recsec:verdicts` marker lists claims of a paper (`claim`, `published`, `verdict`, `why`, and
the `metric` and `where` of our number; `versus: {attack: ptd}` to show, and test, the difference
from another row instead) and makes a table of the published figure beside ours.
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

from recsec.harness import record_file, report, significance, stats
from recsec.harness.errors import RecsecError
from recsec.harness.grid import all_axes, model_axes
from recsec.harness.significance import Row

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
    frame = _shortened(frame, ([rows] if isinstance(rows, str) else list(rows)) + [spec.get("cols", "target")])
    if spec.get("summary"):  # the table `recsec run` prints at its end
        table = report.summary(frame, report.main_k(frame))
        text = report.to_markdown(table, index=False)
        return (f"```\n{text}\n```" if spec.get("fence") else text) + "\n\n" + provenance(records) + "\n"
    if "metrics" in spec:
        table = report.metric_table(frame, list(spec["metrics"]), rows, digits, spec.get("versus"), spec.get("order"),
                                    spec.get("within"))
        table = table.rename(columns=spec.get("headers", {}))
    elif "metric" in spec:
        table = report.pivot(frame, spec["metric"], rows, spec.get("cols", "target"), digits, spec.get("versus"),
                             spec.get("order"), spec.get("within"))
    else:
        raise RecsecError("a table marker names `metric` (with `rows`, `cols`) or `metrics` (with `rows`)")
    return report.to_markdown(table, index=False) + "\n\n" + provenance(records) + "\n"


def _verdicts(spec: dict, folder: Path, where: str) -> str:
    """The published figure beside ours, one row per claim: our mean and interval (or, with
    `versus`, the difference from another row, tested), its seeds, dataset and device, and the
    verdict with its reason."""
    out, tests = [], {}  # tests: claim index -> the rows its `versus` compares
    used: list[dict] = []
    for i, claim in enumerate(spec.get("claims") or []):
        missing = [k for k in ("claim", "published", "verdict", "why") if k not in claim]
        if missing:
            raise RecsecError(f"claims[{i}]: missing {', '.join(missing)}")
        ours, setting = claim.get("ours", "not run"), claim.get("setting", "")
        if "metric" in claim:
            at = f"claims[{i}]"
            a, records = _claim_row({**spec, **claim}, folder, at)
            used += records
            digits = int(claim.get("digits", 3))
            if "versus" in claim:
                b, other = _claim_row({**spec, **claim, "where": {**(claim.get("where") or {}), **claim["versus"]}},
                                      folder, at + " versus")
                used += other
                tests[i] = (a, b, digits)
            else:
                interval = a.interval()
                ours = f"{interval.text(digits).replace(' (1 seed)', '')}, {_seeds(a)}"
            setting = ", ".join(sorted({r["dataset"]["name"] for r in records})) + "; " + \
                ", ".join(sorted({_device(r["device"]) for r in records}))
        published = claim["published"]
        out.append({"claim": claim["claim"], "published": ("yes" if published else "no") if isinstance(published, bool)
                    else str(published), "ours (95% interval)": ours, "data; device": setting,
                    "verdict": claim["verdict"], "why": claim["why"]})
    # The claims' comparisons are one table's: Holm over them.
    adjusted = stats.adjust([stats.compare(a.seeds, b.seeds) for a, b, _ in tests.values()])
    for (i, (a, b, digits)), comparison in zip(tests.items(), adjusted):
        out[i]["ours (95% interval)"] = _difference(a, b, comparison, digits)
    table = pd.DataFrame(out)
    note = provenance(used) if used else ""
    return report.to_markdown(table, index=False) + ("\n\n" + note if note else "") + "\n"


def _claim_row(spec: dict, folder: Path, at: str) -> tuple[Row, list[dict]]:
    """The cells a claim names, as one row by seed; they may differ only in their seed (or in
    the axes its `pool` lists)."""
    frame, records = _cells(spec, folder, at)
    metric = spec["metric"]
    if f"metrics.{metric}" not in frame:
        raise RecsecError(f"{at}: the records have no metric {metric!r}")
    pooled = set(spec.get("pool") or [])
    varying = [a for a in all_axes() if a not in pooled and f"tags.{a}" in frame and frame[f"tags.{a}"].nunique() > 1]
    if varying:
        raise RecsecError(f"{at}: `where` leaves cells that differ in {varying[0]} "
                          f"({', '.join(sorted(frame[f'tags.{varying[0]}'].unique()))}); name one, or `pool` it")
    rows = significance.rows_of(frame.assign(_claim="claim"), frame[f"metrics.{metric}"], ["_claim"], metric)
    return rows[("claim",)], records


def _difference(a: Row, b: Row, c: stats.Comparison, digits: int) -> str:
    ia, ib = a.interval(), b.interval()
    text = f"{ia.mean:.{digits}f} vs {ib.mean:.{digits}f}: {c.difference:+.{digits}f}"
    if c.tested:
        text += f" [{c.low:+.{digits}f}, {c.high:+.{digits}f}], Holm p = {c.p_adjusted:.2g}"
    else:
        text += f" ({c.method})"
    return text + f", {_seeds(a)}"


def _seeds(row: Row) -> str:
    n = len(row.seeds.dropna())
    return f"{n} seed{'s' if n != 1 else ''}"


def _cells(spec: dict, folder: Path, where: str) -> tuple[pd.DataFrame, list[dict]]:
    patterns = spec.get("records")
    if not patterns:
        raise RecsecError("name the records (`records: [path or glob, ...]`, relative to the document)")
    paths = sorted({p for pattern in ([patterns] if isinstance(patterns, str) else patterns)
                    for p in glob.glob(str(folder / pattern))})
    if not paths:
        raise RecsecError(f"no records match {patterns}")
    loaded = record_file.read(paths)
    conditions = spec.get("where") or {}
    shown = {axis: _short_names({_label(r, axis) for r in loaded}) for axis in conditions}
    records = [r for r in loaded if all(_matches(r, axis, wanted, shown[axis]) for axis, wanted in conditions.items())]
    if not records:
        raise RecsecError(f"no record of {', '.join(paths)} matches where {conditions}")
    return record_file.frame(records).drop_duplicates(["experiment", "tags.recsec.cell_hash"], keep="last"), records


def _label(record: dict, axis: str) -> str:
    if axis == "grid":
        return record["grid"]["name"]
    return str(record["axes"].get(axis, record.get(axis, "")))


def _matches(record: dict, axis: str, wanted, shown: dict) -> bool:
    """Whether the record's AXIS is one of `wanted`: its full label, or the label a table shows
    (`ptq` is uniform PTQ, `ptq(outside=clone_top)` the other; `same`: a clone of the target's
    architecture)."""
    label = _label(record, axis)
    values = [str(v) for v in (wanted if isinstance(wanted, list) else [wanted])]
    if axis in model_axes() and "same" in values and label == _label(record, "target"):
        return True
    return label in values or shown.get(label) in values


def _shortened(frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """The axes' labels as a table shows them: a clone that is the target's architecture as
    `same`, and component labels cut to what tells them apart."""
    frame = frame.copy()
    for axis in (a for a in model_axes() if a in axes and f"tags.{a}" in frame and "tags.target" in frame):
        frame[f"tags.{axis}"] = frame[f"tags.{axis}"].where(frame[f"tags.{axis}"] != frame["tags.target"], "same")
    for axis in axes:
        column = report.axis_column(axis)
        if column in frame:
            frame[column] = frame[column].map(_short_names(frame[column].unique()))
    return frame


def _short_names(labels) -> dict:
    """Component labels shortened to what tells them apart: the name alone where it is unique,
    else the name with only the parameters that differ (`dfme(synthesis=random)`)."""
    labels = [str(v) for v in labels]
    parsed = {v: _parse_label(v) for v in labels}
    out = {}
    for label, (name, params) in parsed.items():
        same_name = [p for n, p in parsed.values() if n == name]
        if len(same_name) == 1:
            out[label] = name
            continue
        shared = {k: v for k, v in params.items() if all(p.get(k) == v for p in same_name)}
        kept = {k: v for k, v in params.items() if k not in shared}
        out[label] = f"{name}({','.join(f'{k}={v}' for k, v in kept.items())})" if kept else name
    return out if len(set(out.values())) == len(labels) else {v: v for v in labels}


def _parse_label(label: str) -> tuple[str, dict]:
    """`name(k=v,k=v)` as a label shows a component (harness.grid.Component.label)."""
    if "(" not in label or not label.endswith(")"):
        return label, {}
    name, inner = label[:-1].split("(", 1)
    parts = re.split(r",(?=[A-Za-z_][A-Za-z0-9_]*=)", inner)
    return name, dict(part.split("=", 1) for part in parts if "=" in part)


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
