"""Foundation benchmark: BPR training speed, a small NeuMF's step with torch's two Adam updates,
LightGCN's propagation beside the official code's, full-ranking speed, a training task's peak memory,
and the harness's own overhead on the quickstart grid. Prints figures; asserts nothing.

    python benchmarks/foundation.py --data-dir ../shared/data [--epochs 3] [--skip-grid]
        [--peer-python PYTHON]   # a Python with implicit 0.7.3: its BPR beside ours, same threads

Targets on 2 cores (issue #2): a BPR epoch on ML-1M (batch 2048, 64 dims) under 0.5 s; top-50 for
all 6,040 users under 0.25 s; a target-training task under 1.5 GB peak; harness overhead under
10% of the grid's wall time; exactly one training per distinct target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


# sgd's rate is per example (Rendle et al.); 1e-3 would barely move the loss in 3 epochs.
LEARNING_RATES = {"adam": 1e-3, "lazy_adam": 1e-3, "sgd": 0.05, "learnbpr": 0.05}


def bpr_epoch_seconds(matrix, optimizer: str, epochs: int) -> tuple[float, float]:
    from recsec.models import create_model

    stamps = []
    model = create_model("bpr", *matrix.shape, epochs=epochs, batch_size=2048, dim=64, optimizer=optimizer,
                         lr=LEARNING_RATES[optimizer])
    start = time.perf_counter()
    model.fit(matrix, seed=0, on_epoch=lambda epoch, loss: stamps.append((time.perf_counter(), loss)))
    times = np.diff([start] + [t for t, _ in stamps])
    return statistics.median(times), stamps[-1][1]


def neumf_step_ms(matrix, foreach: bool, epochs: int) -> tuple[float, str]:
    """Median ms per step of DL-Attack's surrogate NeuMF (batch 256, 4 negatives drawn once) with
    torch's per-tensor Adam (its CPU default) or the multi-tensor one (`models.optim.adam`), and
    a hash of the fitted weights: the two must train the same model."""
    import hashlib

    import recsec.models.training as training
    from recsec.attacks.poisoning.dlattack import SURROGATE
    from recsec.models import create_model

    chosen = training.adam
    training.adam = lambda params, **kw: torch.optim.Adam(params, foreach=foreach, **kw)
    try:
        stamps = []
        model = create_model("ncf", *matrix.shape, **{**SURROGATE, "epochs": epochs})
        start = time.perf_counter()
        model.fit(matrix, seed=0, on_epoch=lambda epoch, loss: stamps.append(time.perf_counter()))
    finally:
        training.adam = chosen
    steps = matrix.nnz * (1 + SURROGATE["negatives"]) / SURROGATE["batch_size"]
    weights = hashlib.sha1(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values()))
    return 1000 * statistics.median(np.diff([start] + stamps)) / steps, weights.hexdigest()[:12]


def lightgcn_propagation_ms(matrix, repeats: int = 20) -> tuple[float, float, bool]:
    """Median ms of LightGCN's 3-layer propagation and its backward (dim 64) with torch's COO
    `sparse.mm`, as the official code (`gusye1234/LightGCN-PyTorch`) propagates, and with ours (CSR,
    the graph's symmetry giving the backward); and whether the two give the same gradient."""
    from recsec.models.lightgcn import SymmetricProduct, normalized_adjacency

    csr = normalized_adjacency(matrix, torch.device("cpu"))
    coo = csr.to_sparse_coo().coalesce()
    embedding = torch.randn(csr.shape[0], 64, generator=torch.Generator().manual_seed(0), requires_grad=True)

    def step(product) -> torch.Tensor:
        embedding.grad = None
        layer, total = embedding, embedding
        for _ in range(3):
            layer = product(layer)
            total = total + layer
        (total / 4).square().sum().backward()
        return embedding.grad

    def median_ms(product) -> float:
        step(product)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step(product)
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    peer, ours = (lambda x: torch.sparse.mm(coo, x)), (lambda x: SymmetricProduct.apply(csr, x))
    same = torch.allclose(step(peer).clone(), step(ours), atol=1e-5)
    return median_ms(peer), median_ms(ours), same


def ranking_seconds(matrix, repeats: int = 5) -> float:
    from recsec.models import create_model

    model = create_model("bpr", *matrix.shape, epochs=1)
    users = np.arange(matrix.shape[0])
    model.recommend(users, 50, exclude=matrix)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.recommend(users, 50, exclude=matrix)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def implicit_figures(python: Path, matrix, epochs: int, threads: int) -> dict:
    """implicit's BPR epoch and top-50 ranking on `matrix`, in its own process (its Python)."""
    import scipy.sparse as sp

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "matrix.npz"
        sp.save_npz(path, matrix.tocsr())
        out = subprocess.run([str(python), str(REPO / "benchmarks" / "peers" / "implicit_bpr.py"), str(path),
                              "--threads", str(threads), "--epochs", str(epochs)],
                             check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


TRAIN_TASK = """
import sys, json
from recsec.harness.data import load_dataset
from recsec.harness.grid import parse_grid, expand
from recsec.harness import tasks
grid = parse_grid({"name": "bench", "dataset": {"name": "ml-1m"}, "matrix": {"target": ["bpr"], "attack": ["ptd"]},
                   "training": {"defaults": {"epochs": %d}}})
data = load_dataset("ml-1m", data_dir=sys.argv[1], cache_dir=sys.argv[2])
record = tasks.train_target(expand(grid)[0], data, "bench")
print(json.dumps({"peak_rss_mb": tasks.peak_rss_mb(), "train_seconds": record.metrics["train_seconds"],
                  "recall_at_50": record.metrics["recall_at_50"]}))
"""


def training_task_peak(data_dir: Path, cache_dir: Path, epochs: int) -> dict:
    """Peak RSS of a fresh process that loads ML-1M and runs one target-training task."""
    out = subprocess.run([sys.executable, "-c", TRAIN_TASK % epochs, str(data_dir), str(cache_dir)],
                         capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def quickstart_overhead(num_cpus: int) -> dict:
    """Run the quickstart grid fresh (new MLflow store, new cache) and split its wall time."""
    from recsec.harness.driver import RunOptions, run_grid
    from recsec.harness.grid import expand, load_grid

    grid_path = REPO / "grids" / "quickstart.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(tracking_uri=f"sqlite:///{tmp}/mlflow.db", data_dir=Path(tmp) / "data",
                             cache_dir=Path(tmp) / "cache", num_cpus=num_cpus, fresh=True, progress=False)
        summary = run_grid(grid_path, options)
    cells = expand(load_grid(grid_path))
    distinct_targets = len({c.target_hash("x") for c in cells})
    overhead = summary.wall_seconds - summary.ray_start_seconds - summary.task_seconds
    return {
        "num_cpus": num_cpus,
        "cells": summary.cells,
        "wall_seconds": summary.wall_seconds,
        "ray_start_seconds": summary.ray_start_seconds,
        "task_seconds": summary.task_seconds,
        "overhead_seconds": overhead,
        "overhead_share_of_wall": overhead / summary.wall_seconds,
        "targets_trained": summary.targets_trained,
        "distinct_targets": distinct_targets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "recsec-bench-cache")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per optimizer")
    parser.add_argument("--skip-grid", action="store_true", help="skip the quickstart-grid overhead run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--peer-python", type=Path,
                        help="a Python with implicit installed (pip install implicit==0.7.3): time its BPR "
                             "epoch and ranking on the same matrix with as many threads as torch has")
    args = parser.parse_args()

    from recsec.harness.data import load_dataset

    figures = {"torch_threads": torch.get_num_threads(), "device": "cpu"}
    data = load_dataset("ml-1m", data_dir=args.data_dir, cache_dir=args.cache_dir)
    figures["ml1m"] = data.summary()
    print(f"ML-1M after 5-core: {data.n_users} users, {data.n_items} items, {data.n_interactions} interactions; "
          f"torch threads {figures['torch_threads']}")
    for optimizer in LEARNING_RATES:
        seconds, loss = bpr_epoch_seconds(data.matrix, optimizer, args.epochs)
        figures[f"bpr_epoch_seconds_{optimizer}"] = seconds
        print(f"BPR epoch ({optimizer:9s}, dim 64, batch {'none' if optimizer == 'learnbpr' else 2048}): {seconds:.3f} s (median of {args.epochs}; loss {loss:.4f})")
    ml100k = load_dataset("ml-100k", data_dir=args.data_dir, cache_dir=args.cache_dir,
                          min_user_interactions=1, min_item_interactions=1).matrix
    per_tensor, weights_a = neumf_step_ms(ml100k, foreach=False, epochs=args.epochs)
    multi_tensor, weights_b = neumf_step_ms(ml100k, foreach=True, epochs=args.epochs)
    figures["neumf_step_ms"] = {"per_tensor_adam": per_tensor, "foreach_adam": multi_tensor,
                                "same_weights": weights_a == weights_b}
    print(f"NeuMF step on ML-100k (DL-Attack's surrogate, batch 256): per-tensor Adam {per_tensor:.2f} ms, "
          f"foreach Adam (ours) {multi_tensor:.2f} ms ({per_tensor / multi_tensor:.2f}x); "
          f"same weights: {weights_a == weights_b}")
    peer, ours, same = lightgcn_propagation_ms(ml100k)
    figures["lightgcn_propagation_ms"] = {"torch_coo": peer, "ours_csr": ours, "same_gradient": same}
    print(f"LightGCN propagation + backward on ML-100k (3 layers, dim 64): torch COO sparse.mm (the official "
          f"code's) {peer:.2f} ms, CSR with a symmetric backward (ours) {ours:.2f} ms ({peer / ours:.1f}x); "
          f"same gradient: {same}")
    figures["rank_top50_all_users_seconds"] = ranking_seconds(data.matrix)
    print(f"full-ranking top-50, all {data.n_users} users, seen items excluded: "
          f"{figures['rank_top50_all_users_seconds']:.3f} s")
    if args.peer_python:
        peer = implicit_figures(args.peer_python, data.matrix, args.epochs, figures["torch_threads"])
        figures["implicit"] = peer
        print(f"implicit {peer['implicit']} BPR ({peer['threads']} threads, BLAS pinned to 1): epoch "
              f"{peer['epoch_seconds']:.3f} s; ours with {' / '.join(LEARNING_RATES)} take "
              + " / ".join(f"{figures[f'bpr_epoch_seconds_{o}'] / peer['epoch_seconds']:.2f}x" for o in LEARNING_RATES)
              + f" its time. Top-50 ranking {peer['rank_top50_all_users_seconds']:.3f} s: ours is "
              f"{peer['rank_top50_all_users_seconds'] / figures['rank_top50_all_users_seconds']:.2f}x faster")
    peak = training_task_peak(args.data_dir, args.cache_dir, epochs=5)
    figures["train_task"] = peak
    print(f"target-training task (ML-1M target half, 5 epochs): peak RSS {peak['peak_rss_mb']:.0f} MB, "
          f"{peak['train_seconds']:.1f} s")
    if not args.skip_grid:
        for num_cpus in (1, 2):
            q = quickstart_overhead(num_cpus)
            figures[f"quickstart_{num_cpus}cpu"] = q
            print(f"quickstart grid on {num_cpus} CPU(s): wall {q['wall_seconds']:.1f} s = Ray start "
                  f"{q['ray_start_seconds']:.1f} s + task time {q['task_seconds']:.1f} s + other "
                  f"{q['overhead_seconds']:.1f} s ({q['overhead_share_of_wall']:.0%} of wall); "
                  f"trainings {q['targets_trained']} for {q['distinct_targets']} distinct targets")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
