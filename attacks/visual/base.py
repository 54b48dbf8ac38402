"""What the targeted image attacks share: the perturbation space, batching, and the gradient of
the targeted loss.

Images are [n, 3, H, W] in [0, 1]; eps is given in pixel units out of 255 (eps=8 means 8/255).
- `space: pixel` (the default): the perturbation lives on the image itself: every step is clipped
  to the L-infinity ball of radius eps/255 around the clean image and to [0, 1], so the result is
  a valid image within the budget.
- `space: normalized` (the TAaMR code, faithful option): the attack perturbs the CNN's normalized
  input tensor, with the ball of radius eps/255 in normalized units and no clipping. Mapped back
  to pixels the perturbation is eps/255 * std per channel and the image may leave [0, 1]; the
  attack returns it unclipped, so the features computed from it are the ones the published code
  used.
A targeted step lowers the cross-entropy of the target class: z <- z - step * sign(grad).
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch
import torch.nn.functional as F

from recsec.models.registry import Configured
from recsec.models.sampling import make_generator
from recsec.models.visual.efficientnet_lite import as_float_images

SPACES = ("pixel", "normalized")

# forward(z) -> logits, for z in the attack's space
Forward = Callable[[torch.Tensor], torch.Tensor]


def check_common(name: str, eps: float, space: str, batch_size: int) -> None:
    if not eps > 0:
        raise ValueError(f"{name}: eps must be > 0 (pixel units out of 255), got {eps}")
    if space not in SPACES:
        raise ValueError(f"{name}: space must be one of {SPACES}, got {space!r}")
    if batch_size < 1:
        raise ValueError(f"{name}: batch_size must be >= 1, got {batch_size}")


class ImageAttack(Configured):
    """A configured targeted attack; `perturb` is its one verb."""

    family: ClassVar[str] = "visual"

    def perturb(self, cnn, images: torch.Tensor, target: int | torch.Tensor, *, seed: int = 0) -> torch.Tensor:
        """Adversarial versions of `images` pushed toward class `target` (one id, or one per image),
        computed on the CNN's device in batches; returned on the CPU, in pixel space."""
        cfg = self.config
        n = len(images)
        targets = torch.as_tensor(target, dtype=torch.int64)
        if targets.ndim == 0:
            targets = targets.expand(n)
        if len(targets) != n:
            raise ValueError(f"{self.name}: {len(targets)} targets for {n} images")
        device = cnn.mean.device
        generator = make_generator(seed, device)
        radius = cfg.eps / 255.0
        out = []
        for start in range(0, n, cfg.batch_size):
            x = as_float_images(images[start : start + cfg.batch_size]).to(device)
            y = targets[start : start + cfg.batch_size].to(device)
            if cfg.space == "pixel":
                z0, forward = x, cnn
                lo, hi = (x - radius).clamp_(min=0.0), (x + radius).clamp_(max=1.0)
            else:
                z0 = cnn.normalize(x)
                forward = lambda z: cnn(z, normalized=True)  # noqa: E731
                lo, hi = z0 - radius, z0 + radius
            adv = self.search(forward, z0, y, lo, hi, radius, generator)
            out.append((adv if cfg.space == "pixel" else cnn.denormalize(adv)).detach().cpu())
        if not out:
            return torch.zeros_like(as_float_images(images))
        return torch.cat(out)

    def search(self, forward: Forward, z0: torch.Tensor, target: torch.Tensor, lo: torch.Tensor,
               hi: torch.Tensor, radius: float, generator: torch.Generator) -> torch.Tensor:
        """The attack's own part: an adversarial z within [lo, hi] elementwise."""
        raise NotImplementedError


def target_loss_gradient(forward: Forward, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d/dz of the summed cross-entropy toward `target` (summed, so each image's gradient is its
    own, whatever the batch size)."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(forward(z), target, reduction="sum")
        (grad,) = torch.autograd.grad(loss, z)
    return grad
