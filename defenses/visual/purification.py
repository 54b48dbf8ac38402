"""Image purification (Yin et al.'s "adversarial image reconstruction"): a small convolutional
denoiser, trained to map perturbed item images back to their clean versions, placed before the
feature extractor.

The network is DnCNN-shaped (Zhang et al., 2017): 3x3 convolutions with ReLU that predict the
perturbation, subtracted from the input and clipped to [0, 1]. It is trained with the pixel MSE
on (perturbed -> clean) pairs and, with weight `identity_weight`, on (clean -> clean) pairs, since
in deployment every image passes through it and a purifier that alters clean images costs the
recommender utility. Yin et al. use a transformer-based reconstructor and give no code; this
convolutional one is the spec's allowed alternative and trains in seconds on a CPU at 80x80.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recsec.defenses.visual.base import ImageTransform
from recsec.defenses.visual.registry import register_input_defense
from recsec.models.optim import adam
from recsec.models.sampling import make_generator
from recsec.models.visual.efficientnet_lite import as_float_images


@dataclass(frozen=True)
class PurifierConfig:
    channels: int = 32
    depth: int = 5  # convolutions in all
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    identity_weight: float = 0.5  # weight of the clean -> clean pairs in the loss

    def __post_init__(self):
        for field in ("channels", "epochs", "batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"purify: {field} must be >= 1, got {getattr(self, field)}")
        if self.depth < 2:
            raise ValueError(f"purify: depth must be >= 2, got {self.depth}")
        if not self.lr > 0 or self.identity_weight < 0:
            raise ValueError(f"purify: lr must be > 0 and identity_weight >= 0, got {self.lr}, {self.identity_weight}")


class Denoiser(nn.Module):
    def __init__(self, channels: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(channels, 3, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.body(x)).clamp(0.0, 1.0)


@register_input_defense("purify")
class Purifier(ImageTransform):
    Config = PurifierConfig
    trainable = True

    def __init__(self, config=None):
        super().__init__(config)
        self.network: Denoiser | None = None
        self.device = torch.device("cpu")

    def to(self, device) -> "Purifier":
        self.device = torch.device(device)
        if self.network is not None:
            self.network.to(self.device)
        return self

    def fit(self, clean: torch.Tensor, perturbed: torch.Tensor, *, seed: int = 0) -> "Purifier":
        cfg = self.config
        clean, perturbed = as_float_images(clean), as_float_images(perturbed).clamp(0.0, 1.0)
        if clean.shape != perturbed.shape or len(clean) == 0:
            raise ValueError(f"purify: need matching, non-empty clean and perturbed images, got "
                             f"{tuple(clean.shape)} and {tuple(perturbed.shape)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.network = Denoiser(cfg.channels, cfg.depth).to(self.device)
        generator = make_generator(seed, torch.device("cpu"))
        optimizer = adam(self.network.parameters(), lr=cfg.lr)
        self.network.train()
        for _ in range(cfg.epochs):
            order = torch.randperm(len(clean), generator=generator)
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                x_clean, x_adv = clean[rows].to(self.device), perturbed[rows].to(self.device)
                loss = F.mse_loss(self.network(x_adv), x_clean)
                if cfg.identity_weight:
                    loss = loss + cfg.identity_weight * F.mse_loss(self.network(x_clean), x_clean)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        self.network.eval()
        return self

    def state(self) -> dict:
        """The trained denoiser's weights (plain tensors), for `load_state`."""
        if self.network is None:
            raise RuntimeError("purify: nothing to save before fit()")
        return {key: value.detach().cpu() for key, value in self.network.state_dict().items()}

    def load_state(self, state: dict) -> "Purifier":
        self.network = Denoiser(self.config.channels, self.config.depth).to(self.device)
        self.network.load_state_dict(state)
        self.network.eval()
        return self

    @torch.no_grad()
    def transform(self, images: torch.Tensor) -> torch.Tensor:
        if self.network is None:
            raise RuntimeError("purify: fit() it on clean/perturbed pairs before use")
        out = [self.network(images[s : s + 64].to(self.device)).to(images.device)
               for s in range(0, len(images), 64)]
        return torch.cat(out)
