"""The peer of recsec's BPR-MF: `implicit`'s BPR (0.7.3), timed on a matrix that
benchmarks/foundation.py wrote. Run with a Python that has `implicit` (recsec does not depend on
it); prints one JSON line.

    PEER_PYTHON benchmarks/peers/implicit_bpr.py MATRIX.npz --threads 2 --epochs 5

Its BLAS is pinned to one thread, as implicit's docs ask (its own threads do the work); its
threads are the `--threads` recsec's torch gets.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", help="a scipy .npz of the user x item interactions")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--rank-repeats", type=int, default=5)
    args = parser.parse_args()
    threadpool_limits(1, "blas")
    import implicit
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    matrix = sp.load_npz(args.matrix).tocsr().astype(np.float32)
    # implicit's defaults (learning rate 0.01, regularization 0.01), our dimension; its per-epoch
    # callback stamps each epoch's end
    model = BayesianPersonalizedRanking(factors=args.dim, iterations=args.epochs, num_threads=args.threads,
                                        random_state=0)
    stamps: list[float] = []
    start = time.perf_counter()
    model.fit(matrix, show_progress=False, callback=lambda *_: stamps.append(time.perf_counter()))
    epochs = np.diff([start] + stamps)

    users = np.arange(matrix.shape[0])
    model.recommend(users, matrix, N=50, filter_already_liked_items=True)  # warm-up
    ranks = []
    for _ in range(args.rank_repeats):
        begin = time.perf_counter()
        model.recommend(users, matrix, N=50, filter_already_liked_items=True)
        ranks.append(time.perf_counter() - begin)
    print(json.dumps({"implicit": implicit.__version__, "threads": args.threads,
                      "epoch_seconds": statistics.median(epochs.tolist()),
                      "rank_top50_all_users_seconds": statistics.median(ranks)}))


if __name__ == "__main__":
    main()
