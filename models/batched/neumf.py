"""NeuMF with negatives drawn once (models.training.train_fixed_negatives), R copies at a time."""

from __future__ import annotations

import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recsec.models.batched.common import EpochCallbacks, descend_copies, seeded_samplers, stacked, stacked_rows
from recsec.models.ncf import NeuMF
from recsec.models.optim import adam


def fit_neumf_copies(models: list[NeuMF], train: sp.csr_matrix, seeds: list[int],
                     on_epoch: EpochCallbacks) -> list[NeuMF]:
    cfg, device = models[0].config, models[0].device
    generators, samplers = seeded_samplers(models, train, seeds)
    # then each copy's negatives (drawn once, after its initialisation) and, every epoch, its order
    negative_users = samplers[0].users.repeat_interleave(cfg.negatives)
    negatives = [sampler.negatives(negative_users) for sampler in samplers]
    # The instances' users and labels are the same for every copy; their negative items are not.
    users = torch.cat([samplers[0].users, negative_users])
    items = torch.stack([torch.cat([sampler.items, drawn]) for sampler, drawn in zip(samplers, negatives)])
    labels = torch.cat([torch.ones(len(samplers[0].users), device=device), torch.zeros(len(negative_users), device=device)])
    stack = StackedNeuMF(models)

    def losses(epoch):
        order = torch.stack([torch.randperm(len(users), generator=g, device=device) for g in generators])
        for start in range(0, order.shape[1], cfg.batch_size):
            batch = order[:, start:start + cfg.batch_size]
            logits = stack.score_pairs(users[batch], items.gather(1, batch))
            # copy by copy, as a lone fit reduces its batch: the loss's exp and log round a value
            # by where it sits in a tensor, and a stacked mean's gradient rounds as x * (1 / n)
            yield torch.stack([F.binary_cross_entropy_with_logits(copy_logits, copy_labels)
                               for copy_logits, copy_labels in zip(logits, labels[batch])])

    # the lone fit's Adam (multi-tensor): elementwise, so each copy's slice of a stacked
    # parameter moves exactly as its lone parameter does (torch's fused Adam rounds otherwise)
    optimizer = adam(stack.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return descend_copies(stack, models, optimizer, cfg.epochs, losses, on_epoch)


class StackedNeuMF(torch.nn.Module):
    """R NeuMF copies' parameters stacked on a leading copy axis, scored copy by copy in one call."""

    def __init__(self, models: list[NeuMF]):
        super().__init__()
        self.user_gmf = stacked(m.user_gmf for m in models)
        self.item_gmf = stacked(m.item_gmf for m in models)
        self.user_mlp = stacked(m.user_mlp for m in models)
        self.item_mlp = stacked(m.item_mlp for m in models)
        towers = [_linears(m) for m in models]  # [copy][layer]
        self.weights = torch.nn.ParameterList(stacked(t[i].weight for t in towers) for i in range(len(towers[0])))
        self.biases = torch.nn.ParameterList(stacked(t[i].bias for t in towers) for i in range(len(towers[0])))
        self.output_weight = stacked(m.output.weight for m in models)
        self.output_bias = stacked(m.output.bias for m in models)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users, items [R, b]: copy r's score of (users[r, j], items[r, j]), as NeuMF._score.

        The layers multiply copy by copy (`addmm`, as a lone `nn.Linear` does), not as one
        `baddbmm`: a batched product adds in another order for some shapes (NeuMF's output layer
        among them), and Adam grows that last bit into a different model within an epoch."""
        gmf = stacked_rows(self.user_gmf, users) * stacked_rows(self.item_gmf, items)
        hidden = torch.cat([stacked_rows(self.user_mlp, users), stacked_rows(self.item_mlp, items)], dim=-1)
        for weight, bias in zip(self.weights, self.biases):
            hidden = torch.relu(_linear_per_copy(hidden, weight, bias))
        return _linear_per_copy(torch.cat([gmf, hidden], dim=-1), self.output_weight, self.output_bias).squeeze(-1)

    @torch.no_grad()
    def write_back(self, models: list[NeuMF]) -> None:
        """Copy each copy's parameters into its lone model (for its callbacks, and at the end)."""
        for r, model in enumerate(models):
            model.user_gmf.copy_(self.user_gmf[r])
            model.item_gmf.copy_(self.item_gmf[r])
            model.user_mlp.copy_(self.user_mlp[r])
            model.item_mlp.copy_(self.item_mlp[r])
            for layer, weight, bias in zip(_linears(model), self.weights, self.biases):
                layer.weight.copy_(weight[r])
                layer.bias.copy_(bias[r])
            model.output.weight.copy_(self.output_weight[r])
            model.output.bias.copy_(self.output_bias[r])


def _linear_per_copy(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Copy r's `nn.Linear` on inputs[r]: [R, b, in] -> [R, b, out], the lone layer's kernel and shapes."""
    return torch.stack([torch.addmm(b, x, w.t()) for x, w, b in zip(inputs.unbind(0), weight.unbind(0), bias.unbind(0))])


def _linears(model: NeuMF) -> list[torch.nn.Linear]:
    return [layer for layer in model.tower if isinstance(layer, torch.nn.Linear)]
