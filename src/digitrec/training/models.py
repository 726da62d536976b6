"""Architectures. A `ModelConfig` (saved in config.json beside the weights) is enough to rebuild any of them.

Every model takes float32 (N, 1, 28, 28) in [0, 1], white ink on black, and normalises inside the
network, so the exported ONNX graph carries its own preprocessing constants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


# Old names still read, for one release: `seed` said the reference architecture and recipe, and also --seed.
RENAMED = {"seed": "reference"}


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "fast"
    width: int = 32  # channels of the first stage of the `fast` family (then 2x, 4x); ignored by `reference`
    crop: int = 28  # the `fast` family looks at the central crop x crop pixels only (28: the whole image)

    def __post_init__(self) -> None:
        # Run folders written before the rename say "seed" (the old name of the reference architecture).
        object.__setattr__(self, "arch", RENAMED.get(self.arch, self.arch))

    def to_dict(self) -> dict:
        return asdict(self)


class Normalize(nn.Module):
    """(x - mean) / std with the MNIST constants: lives in the graph so no caller can forget it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MNIST_MEAN), persistent=False)
        self.register_buffer("std", torch.tensor(MNIST_STD), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    """3x3 'same' conv with bias, ReLU, batch norm: the reference block (Keras order: conv, act, BN)."""
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(cout)]


class ReferenceCNN(nn.Module):
    """The reference CNN, layer for layer: 211,690 trainable parameters (213,354 with BN statistics)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            Normalize(),
            *conv_bn(1, 32), *conv_bn(32, 32), nn.MaxPool2d(2), nn.Dropout(0.25),  # 32x14x14
            *conv_bn(32, 64), *conv_bn(64, 64), nn.MaxPool2d(2), nn.Dropout(0.25),  # 64x7x7
            *conv_bn(64, 128),  # 128x7x7
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # 128
        )
        self.head = nn.Sequential(
            nn.Linear(128, 512), nn.ReLU(inplace=True), nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    """Conv without bias (BN supplies it), BN, ReLU: the cheaper modern order."""
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CenterCrop(nn.Module):
    """The central size x size pixels of a larger input; an input of that size already passes through.

    MNIST centres each digit's 20x20 box in 28x28, so the outer rows are nearly always empty: a net that only
    looks at the middle 24x24 costs about 0.7 as much. Training feeds it crops of augmented (shifted)
    images, i.e. random crops; at test time and in the exported graph it takes the 28x28 and crops the centre.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, left = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
        return x if top <= 0 and left <= 0 else x[..., top : top + self.size, left : left + self.size]


class FastCNN(nn.Module):
    """Our CPU-tuned net: spends its FLOPs at 14x14 and 7x7, where they buy the most accuracy per second.

    28x28 (or its central crop) -> one cheap conv -> pool -> two convs at 14x14 -> pool -> two convs at 7x7 ->
    global pool.
    """

    def __init__(self, width: int = 32, crop: int = 28) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        self.crop = CenterCrop(crop)  # no weights: run folders from before crops load unchanged
        self.features = nn.Sequential(
            Normalize(),
            *conv_bn_relu(1, c1), nn.MaxPool2d(2),  # c1 x 14 x 14
            *conv_bn_relu(c1, c2), *conv_bn_relu(c2, c2), nn.MaxPool2d(2),  # c2 x 7 x 7
            *conv_bn_relu(c2, c3), *conv_bn_relu(c3, c3),  # c3 x 7 x 7
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(c3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.crop(x)))


class TinyViT(nn.Module):
    """A small vision transformer, the reference project's "future work": the 28x28 image cut into 49 patches of
    4x4 pixels, `width`-dimensional tokens with learned positions, four pre-norm encoder blocks, mean-pooled."""

    def __init__(self, width: int = 64, depth: int = 4, heads: int = 4, patch: int = 4) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.embed = nn.Conv2d(1, width, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, (28 // patch) ** 2, width))
        nn.init.trunc_normal_(self.pos, std=0.02)
        block = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.normalize(x)).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.norm(self.encoder(tokens)).mean(1))


ARCHS = {"reference": lambda cfg: ReferenceCNN(), "fast": lambda cfg: FastCNN(cfg.width, cfg.crop),
         "vit": lambda cfg: TinyViT(cfg.width)}


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.arch not in ARCHS:
        raise ValueError(f"unknown architecture {cfg.arch!r}; choose one of {sorted(ARCHS)}")
    return ARCHS[cfg.arch](cfg)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, trainable + batch-norm running statistics) — the two figures Keras prints."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(
        b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var"))
    )
    return trainable, trainable + stats


PROB_FLOOR = 1e-12  # keeps log() finite where every member gives a class exactly zero


class Ensemble(nn.Module):
    """K models as one: log of their mean probability, so softmax of the output gives the mean back and
    everything downstream of the ONNX contract takes an ensemble unchanged (ensemble.py builds them)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(x).softmax(1) for m in self.members]).mean(0)
        return probs.clamp_min(PROB_FLOOR).log()
