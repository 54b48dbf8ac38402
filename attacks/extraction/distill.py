"""Distilling a surrogate from the target's answers to synthetic prefixes, as the extraction code
(Yue et al.; GRO's distill_gro.py) runs it:

- the loss: margin ranking (0.5) between consecutive list items, and between each list item and
  one sampled item (`list_loss`); the sampled item is drawn from a softmax over all items whose
  logit is 0 for listed items and 1 for the others (`softmax_negatives`), so listed items are
  still drawn, e times less often; `outside` draws only unlisted items (our earlier rule);
- the data: every prefix but the last of each synthetic sequence trains; the last (the whole
  sequence) is held out, and after each epoch the surrogate is scored there by NDCG@10 of the
  target's top item, ranked among the target's 100 listed items (`select_ranking: listed`, Yue et
  al.'s code) or among all items (`all`, GRO's distill_gro.py with --rankall); the best epoch's
  weights are kept (`select: best_last_prefix`), or the last epoch's (`select: last`, then every
  prefix trains). Full ranking favours the first epochs: a barely trained surrogate puts the
  popular items first, and those are the target's top items for most synthetic prefixes;
- AdamW (weight decay 0.01 on matrices and embeddings), gradients clipped at 5 per parameter.
"""

from __future__ import annotations

import numpy as np
import torch

from recsec.harness import streams
from recsec.models.losses import list_loss
from recsec.models.optim import adam
from recsec.models.sampling import NEGATIVE_RULES, draw_negatives, make_generator, seeded_global_rng
from recsec.models.sequential.training import BestEpoch, clip_gradients, make_optimizer

SELECTIONS = ("best_last_prefix", "last")
SELECTION_RANKINGS = ("listed", "all")
OPTIMIZERS = ("adamw", "adam")
DROPOUT = streams.purpose("dfme: the surrogate's dropout", 0xDF0)


def held_out_ndcg(model, prefixes, lists: torch.Tensor, examples: torch.Tensor, ranking: str,
                  batch: int = 512) -> float:
    """Mean NDCG@10 of each held-out prefix's top listed item, ranked by the model among the
    listed items (`listed`) or among all items (`all`)."""
    model.eval()
    ranks = []
    with torch.no_grad():
        for start in range(0, len(examples), batch):
            rows = examples[start : start + batch]
            listed = lists[rows]
            scores = model.score(prefixes[rows])
            pool = scores.gather(1, listed) if ranking == "listed" else scores
            top_score = scores.gather(1, listed[:, :1])
            ranks.append((pool > top_score).sum(1).cpu().numpy())
    model.train()
    ranks = np.concatenate(ranks)
    return float(np.where(ranks < 10, 1 / np.log2(ranks + 2), 0.0).mean())


def distill(model, prefixes, lists: np.ndarray, cfg, *, seed: int):
    """Train `model` on (prefix, list) pairs. `prefixes` indexes examples e = row * L + t (the
    prefix of t + 1 items, answered by `lists[e]`); `cfg` is a DFMEConfig. Returns the model."""
    if cfg.epochs == 0:
        return model
    device = model.device
    generator = make_generator(seed, device)
    served = torch.from_numpy(np.asarray(lists, dtype=np.int64)).to(device)
    examples = torch.arange(len(served), device=device)
    held_out = examples[examples % prefixes.length == prefixes.length - 1]
    if cfg.select == "best_last_prefix" and prefixes.length > 1:
        examples = examples[examples % prefixes.length != prefixes.length - 1]
    else:
        held_out = held_out[:0]
    with seeded_global_rng(DROPOUT.seed(seed), device):  # dropout draws from torch's global generator
        optimizer = (make_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay) if cfg.optimizer == "adamw"
                     else adam(model.parameters(), lr=cfg.lr))
        best = BestEpoch(model)
        model.train()
        for _ in range(cfg.epochs):
            order = examples[torch.randperm(len(examples), generator=generator, device=device)]
            for start in range(0, len(order), cfg.batch_users):
                batch = order[start : start + cfg.batch_users]
                listed = served[batch]
                negatives = draw_negatives(cfg.negative_sampling, listed, model.n_items, generator)
                scores = model.score_pairs(prefixes[batch], torch.cat([listed, negatives], dim=1))
                loss = list_loss(scores[:, : listed.shape[1]], scores[:, listed.shape[1] :], cfg.margin,
                                 cfg.ranking_loss, cfg.item_loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip_gradients(model.parameters(), cfg.clip_norm, cfg.clip)
                optimizer.step()
            if len(held_out):
                best.offer(held_out_ndcg(model, prefixes, served, held_out, cfg.select_ranking))
        best.restore()
        model.eval()
        return model
