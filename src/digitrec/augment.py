"""Batched random affine (and optional elastic) augmentation: one `affine_grid` + `grid_sample` for the whole batch.

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
    # Elastic distortion (Simard et al. 2003): a random displacement field smoothed by a Gaussian of
    # `elastic_sigma` pixels, scaled by `elastic_alpha`. It bends strokes the way hands do, which no affine map can.
    elastic_alpha: float = 0.0  # 0: off
    elastic_sigma: float = 4.0

    @property
    def enabled(self) -> bool:
        return any((self.rotation_deg, self.shift, self.zoom, self.shear_deg, self.elastic_alpha))

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
    if cfg.elastic_alpha:
        grid = grid + elastic_field(n, images.shape[-2:], cfg, generator).to(grid)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, round(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def elastic_field(n: int, size: torch.Size, cfg: AugmentConfig, generator: torch.Generator | None) -> torch.Tensor:
    """(N, H, W, 2) displacements in grid_sample's normalised coordinates: uniform noise, blurred, scaled."""
    h, w = size
    noise = torch.rand(n, 2, h, w, generator=generator) * 2 - 1
    k = gaussian_kernel(cfg.elastic_sigma)
    r = len(k) // 2
    # Separable blur, both displacement channels at once; reflect padding keeps the field alive at the border.
    noise = F.conv2d(F.pad(noise, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(2, 1, 1, -1), groups=2)
    noise = F.conv2d(F.pad(noise, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(2, 1, -1, 1), groups=2)
    pixels = noise * cfg.elastic_alpha
    # A pixel is 2 / side in normalised coordinates; channel 0 moves x, channel 1 moves y, as grid's last axis.
    return torch.stack([pixels[:, 0] * (2 / w), pixels[:, 1] * (2 / h)], dim=-1)
