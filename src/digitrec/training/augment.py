"""Batched random affine augmentation: one `affine_grid` + `grid_sample` for the whole batch.

Per-image PIL transforms would cost more than the forward pass on a 2-core CPU; this costs a few percent.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 10.0  # uniform in [-r, r]
    shift: float = 0.10  # fraction of the image side, each axis
    zoom: float = 0.10  # scale uniform in [1 - z, 1 + z]
    shear_deg: float = 10.0

    @property
    def enabled(self) -> bool:
        return any((self.rotation_deg, self.shift, self.zoom, self.shear_deg))

    def to_dict(self) -> dict:
        return asdict(self)


def random_affine(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply an independent random affine map to each image of (N, C, H, W); shapes and labels unchanged."""
    if not cfg.enabled:
        return images
    n = images.shape[0]

    def uniform(bound: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * bound

    angle = uniform(math.radians(cfg.rotation_deg))
    shear = uniform(math.radians(cfg.shear_deg))
    scale = 1 + uniform(cfg.zoom)
    # Normalised coordinates span [-1, 1], so a shift of s of the side is 2s.
    tx, ty = uniform(2 * cfg.shift), uniform(2 * cfg.shift)
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    # grid_sample maps output -> input coordinates: rotation . shear, divided by zoom.
    a, b = cos / scale, (cos * tan - sin) / scale
    c, d = sin / scale, (sin * tan + cos) / scale
    theta = torch.stack([torch.stack([a, b, tx], 1), torch.stack([c, d, ty], 1)], 1).to(images)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
