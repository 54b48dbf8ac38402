"""R copies of a model trained one after another, beside the same R copies trained as one
model-batched fit (models/batched/), each timed as a whole process over several runs.

    python benchmarks/batched_training.py [--data-dir ../shared/data] [--copies 1 5 10 30]
        [--repeats 3] [--epochs N] [--models ncf-dlattack bpr]

The copies are what a poisoning cell's retrainings are: one model and config on ML-100k (all
interactions, as DL-Attack's grid loads it), seeds 0..R-1. `--epochs` shortens every fit alike
(the per-epoch cost is what batching changes; say so beside figures made with it). A model with
no batched trainer is fit one by one in both columns: its ratio is about 1, and printed anyway.
After the timings, one in-process check per model: the largest absolute difference between each
batched copy's weights and its lone fit's (0: a batched copy ends with its lone fit's bits).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = {
    # DL-Attack's NeuMF (grids/poisoning/dlattack-ml100k.yaml)
    "ncf-dlattack": ("ncf", {"dim": 8, "mlp_dim": 32, "layers": [32, 16, 8], "epochs": 20, "batch_size": 256,
                             "lr": 0.001, "negatives": 4, "linear_init": "torch", "negatives_drawn": "once"}),
    # the general poisoning tables' BPR-MF and LMF (grids/poisoning/general-ml100k.yaml)
    "bpr": ("bpr", {"dim": 64, "epochs": 20, "lr": 0.01, "batch_size": 2048}),
    "lmf": ("lmf", {"dim": 64, "epochs": 20, "lr": 0.005, "batch_size": 2048}),
    "lightgcn": ("lightgcn", {"dim": 64, "epochs": 200, "lr": 0.001, "batch_size": 2048}),
}


def build(model: str, epochs: int | None):
    from recsec.models import ModelSpec

    name, params = MODELS[model]
    return ModelSpec.of(name, {**params, **({"epochs": epochs} if epochs else {})})


def load(data_dir: str):
    from recsec.harness.data import load_dataset

    return load_dataset("ml-100k", data_dir=data_dir, min_user_interactions=1, min_item_interactions=1).matrix


def worker(args) -> None:
    """One timed process: R copies, lone or batched."""
    from recsec.models.batched import fit_copies

    train, spec = load(args.data_dir), build(args.model, args.epochs)
    models = [spec.build(*train.shape) for _ in range(args.copies)]
    fit_copies(models, train, list(range(args.copies)), batched=args.mode == "batched")


def timed(args, model: str, copies: int, mode: str) -> list[float]:
    command = [sys.executable, __file__, "--worker", mode, "--model", model, "--copies", str(copies),
               "--data-dir", args.data_dir] + (["--epochs", str(args.epochs)] if args.epochs else [])
    out = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        out.append(time.perf_counter() - start)
    return out


def agreement(args, model: str, copies: int) -> float:
    from recsec.models.batched import fit_copies

    train, spec = load(args.data_dir), build(model, args.epochs)
    seeds = list(range(copies))
    batched = fit_copies([spec.build(*train.shape) for _ in seeds], train, seeds, batched=True)
    lone = [spec.build(*train.shape).fit(train, seed=seed) for seed in seeds]
    return max((x - y).abs().max().item() for a, b in zip(batched, lone) for x, y in zip(a.parameters(), b.parameters()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 5, 10, 30])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--models", nargs="+", default=["ncf-dlattack", "bpr", "lmf"], choices=list(MODELS),
                        help="(lightgcn's 200 epochs take minutes a fit: ask for it, with --epochs)")
    parser.add_argument("--worker", choices=["lone", "batched"])
    parser.add_argument("--model", choices=list(MODELS))
    args = parser.parse_args()
    if args.worker:
        args.mode, args.copies = args.worker, args.copies[0]
        return worker(args)
    threads = os.environ.get("OMP_NUM_THREADS", "torch's default")
    print(f"whole processes, median of {args.repeats} runs (min-max); OMP_NUM_THREADS={threads}; "
          f"epochs: {args.epochs or 'the config''s'}")
    print("| model | R | R lone fits (s) | one batched fit (s) | lone / batched |")
    print("|---|---|---|---|---|")
    for model in args.models:
        for copies in args.copies:
            lone, batched = timed(args, model, copies, "lone"), timed(args, model, copies, "batched")
            shown = lambda t: f"{statistics.median(t):.1f} ({min(t):.1f}-{max(t):.1f})"  # noqa: E731
            print(f"| {model} | {copies} | {shown(lone)} | {shown(batched)} | "
                  f"{statistics.median(lone) / statistics.median(batched):.2f}x |", flush=True)
    for model in args.models:
        copies = min(3, max(args.copies))
        print(f"{model}: largest |batched - lone| weight over {copies} copies: {agreement(args, model, copies):.2g}")


if __name__ == "__main__":
    main()
