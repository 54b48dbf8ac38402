"""Leaderboard benchmark: how long the leaderboard and its HTML page take over a store of many
cells, and where the time goes (reading MLflow, pairing and aggregating, rendering). Prints
figures; asserts nothing.

    python benchmarks/leaderboard.py [--cells 2000] [--tracking-uri sqlite:///bench.db]

The cells are logged through the real Tracker: 4 families' worth of attacks x defenses x
settings x seeds, with metrics drawn at random. A given --tracking-uri that already holds them
(from an earlier run of this script) is reused.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

FAMILIES = {
    "stealing": (["ptd", "ptq", "pta", "ptaq", "qsd"], ["none", "popular_mix(n=5)", "popular_mix(n=10)", "random"]),
    "extraction": (["dfme"], ["none", "gro(lam=0.01)", "gro(lam=0.1)", "random", "reverse"]),
    "membership": (["zhang_mlp", "zhang_kmeans", "dlmia"], ["none", "popularity_randomization"]),
    "visual": (["fgsm(eps=8)", "pgd(eps=8)"], ["none", "jpeg", "median", "purify"]),
}


def log_store(uri: str, cells: int, rng: np.random.Generator) -> int:
    from recsec.harness.tracking import CELL_HASH, FAMILY, KIND, Tracker

    tracker = Tracker(uri)
    combos = [(f, a, d) for f, (attacks, defenses) in FAMILIES.items() for a in attacks for d in defenses]
    logged = 0
    for setting, seed in itertools.product(range(10**6), range(5)):
        for family, attack, defense in combos:
            if logged >= cells:
                return logged
            experiment = tracker.experiment(f"bench-{family}")
            metrics = {"recall_at_10": 0.3 - (defense != "none") * 0.02 + rng.normal(0, 0.01)}
            if family == "membership":
                metrics["roc_auc"] = rng.uniform(0.5, 1.0)
            elif family == "visual":
                metrics.update(chr_at_10_clean=0.001, chr_at_10_attacked=rng.uniform(0.001, 0.02))
            else:
                metrics["agr_at_10"] = rng.uniform(0.2, 0.8)
            tags = {KIND: "cell", CELL_HASH: f"{family}-{attack}-{defense}-{setting}-{seed}", FAMILY: family,
                    "recsec.grid": f"bench-{family}", "recsec.dataset": "ml-1m", "target": "bpr", "clone": "bpr",
                    "attack": attack, "defense": defense, "known_share": str(0.1 * (setting % 5 + 1)),
                    "known_unit": "users", "list_length": "50", "query_budget": "all", "aux_share": "1.0",
                    "item_overlap": "1.0", "seed": str(seed)}
            tracker.log_run(experiment, f"{attack} [{defense}]", tags, {"attack.name": attack.split("(")[0]}, metrics)
            logged += 1
    return logged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()

    from recsec.harness import leaderboard
    from recsec.harness.leaderboard_render import to_html_text, to_markdown_text

    with tempfile.TemporaryDirectory() as tmp:
        uri = args.tracking_uri or f"sqlite:///{Path(tmp) / 'bench.db'}"
        start = time.perf_counter()
        try:
            have = len(leaderboard.load_cells(uri))
        except Exception:
            have = 0
        if have < args.cells:
            logged = log_store(uri, args.cells - have, np.random.default_rng(0))
            print(f"logged {logged} cells in {time.perf_counter() - start:.1f}s")
        start = time.perf_counter()
        frame = leaderboard.load_cells(uri)
        read = time.perf_counter() - start
        start = time.perf_counter()
        boards = leaderboard.build(frame, k=10)
        built = time.perf_counter() - start
        start = time.perf_counter()
        markdown = to_markdown_text(boards)
        md_seconds = time.perf_counter() - start
        start = time.perf_counter()
        page = to_html_text(boards, source=uri)
        html_seconds = time.perf_counter() - start
    print(f"cells {len(frame)}  families {len(boards)}  entries {sum(len(b.entries) for b in boards)}")
    print(f"read from MLflow     {read:7.2f} s  ({1000 * read / len(frame):.2f} ms per cell)")
    print(f"pair and aggregate   {built:7.2f} s")
    print(f"markdown             {md_seconds:7.2f} s  ({len(markdown) / 1e3:.0f} kB)")
    print(f"html with plots      {html_seconds:7.2f} s  ({len(page) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
