"""DL-Attack (Huang et al., NDSS 2021), as its code (MiracleHH/RecommPoison, main.py) runs it.

Fake users are made one at a time. For each new fake user v:
1. v rates the target items; a fresh surrogate NeuMF (the "poison model", the target's own
   architecture) is trained on the attacker's data, the fake users made so far and v, keeping
   its best epoch by sampled HR@10 where the attacker holds the held-out items (the code's test
   set), else its last.
2. `rounds` times: for each normal user u (the known users who rated no target), in a shuffled
   order, one Adam step on alpha * reg_u * l_u with
       l_u = max(log y_u[K] - log y_u,t, -kappa)
   (y_u[K] the K-th best predicted score among u's unrated items, targets included), skipped
   where l_u = -kappa; one Adam step on alpha * sum_j y_v,j^2 over the non-target items; one BCE
   epoch on the training data. The round whose surrogate gives the targets the highest hit ratio
   among the normal users (their count over all known users, the code's formula) is kept, the
   pretrained surrogate being round 0.
3. v's fillers are the `filler_items` non-target items with the highest y_v,j * p_j, where p
   starts at 1, each chosen item's p is multiplied by `decay`, and p is reset to 1 once every
   item's is below 1: later fake users spread over other items.

The one optimizer (Adam, its state included) trains the surrogate and takes the attack's steps,
as in the code. With several target items, l_u sums over them. Defaults are the README's
setting for ML-100k (alpha 1e-2, kappa 1, rounds 5, reg_u 100, decay 0.9); the code's argparse
defaults differ (alpha 100, kappa 0, reg_u 0, no decay).

Cost: one surrogate trained from scratch per fake user (fake users x surrogate epochs), plus
rounds x normal users single-user steps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recsec.attacks.poisoning.base import Injection, PoisonAttack, PoisonView, profiles_matrix
from recsec.attacks.registry import register_attack
from recsec.models import create_model
from recsec.models.optim import adam
from recsec.models.selection import BestEpoch, sampled_candidates
from recsec.models.training import train_fixed_negatives
from recsec.harness import streams

SURROGATES = streams.purpose("dl_attack: surrogates' seeds and sampled items", 0xD1A)

# The surrogate NeuMF of DL-Attack's README command: GMF 8, MLP [64, 32, 16, 8], Adam 1e-3,
# batch 256, 20 epochs, 4 negatives drawn once.
SURROGATE = {"dim": 8, "mlp_dim": 32, "layers": [32, 16, 8], "epochs": 20, "batch_size": 256, "lr": 1e-3,
             "negatives": 4, "linear_init": "torch", "negatives_drawn": "once"}


@dataclass(frozen=True)
class DLAttackConfig:
    rounds: int = 5
    alpha: float = 1e-2
    kappa: float = 1.0
    reg_u: float = 100.0
    decay: float = 0.9  # the code's `prob`: how much a chosen filler's weight shrinks
    top_k: int = 10  # K of the surrogate's hit-ratio loss
    surrogate: dict = field(default_factory=lambda: dict(SURROGATE))  # ncf parameters

    def __post_init__(self):
        if self.rounds < 0 or self.top_k < 1:
            raise ValueError(f"dl_attack: rounds must be >= 0 and top_k >= 1, got {self.rounds}, {self.top_k}")
        if not 0 < self.decay <= 1:
            raise ValueError(f"dl_attack: decay must be in (0, 1], got {self.decay}")
        unknown = set(self.surrogate) - set(SURROGATE) - {"weight_decay", "init_std"}
        if unknown:
            raise ValueError(f"dl_attack: surrogate takes ncf parameters, not {', '.join(sorted(unknown))}")


@register_attack("dl_attack")
class DLAttack(PoisonAttack):
    Config = DLAttackConfig

    def run(self, view: PoisonView, oracle, *, seed: int, device: str = "cpu") -> Injection:
        rng = SURROGATES.rng(seed)
        torch_seed = int(rng.integers(2**31))
        targets = np.asarray(view.target_items, dtype=np.int64)
        normal = np.flatnonzero(np.asarray(view.known_train[:, targets].sum(axis=1)).ravel() == 0)
        selection = self._selection(view, rng)
        weights = np.ones(view.n_items)
        rows: list[np.ndarray] = []
        for v in range(view.budget.fake_users):
            train = sp.vstack([view.known_train, profiles_matrix(rows + [targets], view.n_items)], format="csr")
            surrogate, optimizer = self._pretrain(train, selection, torch_seed + v, device)
            self._poison_rounds(surrogate, optimizer, train, normal, targets, view.n_known + len(rows), rng,
                                torch_seed + v)
            fillers = self._fillers(surrogate, view.n_known + len(rows), targets, weights, view.budget.filler_items)
            rows.append(np.concatenate([targets, fillers]))
            oracle.inject(profiles_matrix([rows[-1]], view.n_items))
        return Injection(profiles_matrix(rows, view.n_items))

    # -- the steps --------------------------------------------------------------------------

    def _selection(self, view: PoisonView, rng: np.random.Generator):
        """Users and candidates for the surrogate's epoch selection (None: keep the last epoch)."""
        if view.known_holdout is None:
            return None
        users = np.flatnonzero(view.known_holdout >= 0)
        seen = view.known_train.copy().tolil()
        seen[users, view.known_holdout[users]] = 1
        return users, sampled_candidates(seen.tocsr(), users, view.known_holdout[users], 99, rng)

    def _pretrain(self, train: sp.csr_matrix, selection, seed: int, device: str):
        params = self.config.surrogate
        surrogate = create_model("ncf", train.shape[0], train.shape[1], **params).to(device)
        optimizer = adam(surrogate.parameters(), lr=surrogate.config.lr, weight_decay=surrogate.config.weight_decay)
        keeper = BestEpoch(surrogate, *selection) if selection is not None else None
        train_fixed_negatives(surrogate, train, epochs=surrogate.config.epochs, batch_size=surrogate.config.batch_size,
                              lr=surrogate.config.lr, negatives=surrogate.config.negatives, seed=seed,
                              on_epoch=keeper, optimizer=optimizer)
        if keeper is not None:
            keeper.restore()
        return surrogate, optimizer

    def _poison_rounds(self, surrogate, optimizer, train, normal, targets, fake_row, rng, seed) -> None:
        cfg = self.config
        best_hr, best_state = self._target_hit_ratio(surrogate, train, normal, targets), None
        for round_ in range(cfg.rounds):
            surrogate.train()
            for u in rng.permutation(normal):
                loss = self._user_loss(surrogate, train, int(u), targets)
                if loss is not None:
                    optimizer.zero_grad(set_to_none=True)
                    (cfg.alpha * cfg.reg_u * loss).backward()
                    optimizer.step()
            others = torch.ones(train.shape[1], dtype=torch.bool, device=surrogate.device)
            others[torch.as_tensor(targets, device=surrogate.device)] = False
            scores = torch.sigmoid(surrogate.score(torch.tensor([fake_row], device=surrogate.device)))[0]
            optimizer.zero_grad(set_to_none=True)
            (cfg.alpha * (scores[others] ** 2).sum()).backward()
            optimizer.step()
            train_fixed_negatives(surrogate, train, epochs=1, batch_size=surrogate.config.batch_size,
                                  lr=surrogate.config.lr, negatives=surrogate.config.negatives,
                                  seed=seed * 31 + round_, reset=False, optimizer=optimizer)
            hr = self._target_hit_ratio(surrogate, train, normal, targets)
            if hr > best_hr:
                best_hr, best_state = hr, copy.deepcopy(surrogate.state_dict())
        if best_state is not None:
            surrogate.load_state_dict(best_state)
        surrogate.eval()

    def _user_loss(self, surrogate, train: sp.csr_matrix, user: int, targets: np.ndarray):
        """l_u summed over the targets, or None where every term sits at -kappa (no step)."""
        cfg = self.config
        scores = F.logsigmoid(surrogate.score(torch.tensor([user], device=surrogate.device))[0])
        unrated = torch.ones(train.shape[1], dtype=torch.bool, device=surrogate.device)
        unrated[torch.as_tensor(train.indices[train.indptr[user]:train.indptr[user + 1]], dtype=torch.long,
                                device=surrogate.device)] = False
        kth = torch.topk(scores[unrated], min(cfg.top_k, int(unrated.sum()))).values[-1]
        terms = torch.clamp(kth - scores[torch.as_tensor(targets, device=surrogate.device)], min=-cfg.kappa)
        return terms.sum() if bool((terms > -cfg.kappa).any()) else None

    @torch.no_grad()
    def _target_hit_ratio(self, surrogate, train, normal, targets) -> float:
        """The surrogate's target hit ratio: the share of normal users with a target in their
        top-K unrated items (the code divides the count by every real user: the same order)."""
        if len(normal) == 0:
            return 0.0
        lists = surrogate.recommend(normal, self.config.top_k, exclude=train)
        return float(np.isin(lists, targets).any(axis=1).mean())

    @torch.no_grad()
    def _fillers(self, surrogate, fake_row: int, targets, weights: np.ndarray, n: int) -> np.ndarray:
        scores = torch.sigmoid(surrogate.score(torch.tensor([fake_row], device=surrogate.device)))[0].cpu().numpy()
        weighted = scores.astype(np.float64) * weights
        weighted[targets] = -np.inf
        chosen = np.argsort(-weighted, kind="stable")[:n]
        weights[chosen] *= self.config.decay
        if (np.delete(weights, targets) < 1).all():  # the weights cover the non-target items
            weights[:] = 1.0
        return chosen
