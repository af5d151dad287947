"""The keypoint network: structural prior, modality adapters, shared dilated encoder, R2D2-style heads.

One network serves both jobs (optical-SAR and SAR-SAR):

* :class:`StructuralPrior` - a fixed (non-learned) bank of steerable derivative-of-Gaussian
  filters, first order (``Gx, Gy``) and second order (``Gxx, Gxy, Gyy``) at several scales.
  Any orientation's first/second derivative is a linear combination of this basis, so the
  learned layers after it can steer them. Responses are divided by a local RMS so that
  their scale does not depend on the image contrast.
* :class:`PriorAttention` - the responses and the input, through a small conv block ending
  in a sigmoid, give a per-pixel, per-channel weight of the stacked ``[input, responses]``:
  the structural prior decides which input structure goes on.
* two modality adapters (small conv blocks, one per sensor); ``modality`` (0 = SAR,
  1 = optical) blends them: ``(1 - m) * sar(x) + m * optical(x)`` (exactly one of them for
  m in {0, 1}; the blend keeps the graph static for ONNX).
* :class:`DilatedEncoder` - a shared encoder: a stride-2 trunk of dilated convolutions
  (dilations 1, 2, 4, 4), upsampled and fused by a 1x1 convolution with the adapter
  full-resolution skip, so the output is at full resolution.
* heads: descriptors ``(N, D, H, W)`` L2-normalised over ``D``; repeatability and
  reliability ``(N, 1, H, W)`` in [0, 1] (sigmoids; reliability from the squared descriptors,
  as in R2D2).

Input sides must be multiples of 16 (the engine feeds such tiles); the network itself only
needs even sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..config import ConfigDict

SIDE_MULTIPLE = 16
"""Input height and width must be multiples of this (the engine's contract)."""
DILATIONS = (1, 2, 4, 4)


@dataclass(frozen=True)
class ModelConfig(ConfigDict):
    """Network shape (plain types only, stored in checkpoints)."""

    width: int = 16
    descriptor_dim: int = 128
    prior_sigmas: tuple[float, ...] = (1.0, 2.0, 3.0)
    dilations: tuple[int, ...] = DILATIONS

    def __post_init__(self) -> None:
        if self.width < 4 or self.descriptor_dim < 2:
            raise ValueError(
                f"width must be >= 4 and descriptor_dim >= 2 (got {self.width}, {self.descriptor_dim})."
            )
        if not self.prior_sigmas or min(self.prior_sigmas) <= 0:
            raise ValueError(f"prior_sigmas must be positive scales in pixels (got {self.prior_sigmas}).")
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"dilations must be >= 1 (got {self.dilations}).")


def derivative_of_gaussian_bank(sigmas: tuple[float, ...]) -> torch.Tensor:
    """``(5 * len(sigmas), 1, k, k)`` kernels ``Gx, Gy, Gxx, Gxy, Gyy`` per scale (scale-normalised).

    ``k = 2 * ceil(3 * max(sigmas)) + 1``; each kernel is centred, the smaller scales zero-padded.
    First-order kernels are multiplied by ``sigma``, second-order by ``sigma**2`` (scale
    normalisation, so responses at the different scales are comparable).
    """
    radius = math.ceil(3 * max(sigmas))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    y, x = torch.meshgrid(t, t, indexing="ij")
    kernels = []
    for s in sigmas:
        g = torch.exp(-(x**2 + y**2) / (2 * s * s))
        g = g / g.sum()
        gx, gy = -x / s**2 * g, -y / s**2 * g
        gxx = (x**2 / s**4 - 1 / s**2) * g
        gyy = (y**2 / s**4 - 1 / s**2) * g
        gxy = x * y / s**4 * g
        for k, order in ((gx, 1), (gy, 1), (gxx, 2), (gxy, 2), (gyy, 2)):
            kernels.append(k * s**order)
    bank = torch.stack(kernels)[:, None]
    # second-order kernels of a sampled Gaussian do not sum to exactly zero: remove the DC leak
    bank = bank - bank.mean(dim=(2, 3), keepdim=True)
    return bank.float()


class StructuralPrior(nn.Module):
    """Fixed steerable derivative-of-Gaussian responses, divided by their local RMS."""

    bank: torch.Tensor

    def __init__(self, sigmas: tuple[float, ...], eps: float = 1e-2) -> None:
        super().__init__()
        bank = derivative_of_gaussian_bank(sigmas)
        self.register_buffer("bank", bank)  # fixed, not a parameter
        self.pad = bank.shape[-1] // 2
        self.eps = eps
        self.channels = bank.shape[0]
        self.norm_radius = 2 * math.ceil(2 * max(sigmas)) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.conv2d(F.pad(x, (self.pad,) * 4, mode="replicate"), self.bank)
        energy = F.avg_pool2d(
            (r * r).mean(dim=1, keepdim=True), self.norm_radius, stride=1,
            padding=self.norm_radius // 2, count_include_pad=False,
        )
        return r / torch.sqrt(energy + self.eps**2)


def conv(cin: int, cout: int, k: int = 3, dilation: int = 1, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=dilation * (k // 2), dilation=dilation)


class PriorAttention(nn.Module):
    """Per-pixel, per-channel weights in (0, 2) of ``[input, responses]`` from the responses."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.block = nn.Sequential(conv(channels, hidden), nn.ReLU(inplace=True), conv(hidden, channels, 1))

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        return stacked * (2.0 * torch.sigmoid(self.block(stacked)))


class Adapter(nn.Module):
    """A modality-specific conv block: prior-weighted stack -> ``width`` features (full resolution)."""

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.block = nn.Sequential(conv(cin, width), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class DilatedEncoder(nn.Module):
    """A stride-2 trunk of dilated convolutions, upsampled and fused with the full-resolution input.

    Output ``(N, 4 * width, H, W)``: the trunk carries the context at half resolution (cheap),
    the 1x1 fusion with the full-resolution adapter features keeps the localisation.
    """

    def __init__(self, width: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.down = nn.Sequential(conv(width, 2 * width, stride=2), nn.ReLU(inplace=True))
        trunk: list[nn.Module] = []
        for d in dilations:
            trunk += [conv(2 * width, 2 * width, dilation=d), nn.ReLU(inplace=True)]
        self.trunk = nn.Sequential(*trunk)
        self.fuse = nn.Sequential(conv(3 * width, 4 * width, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.trunk(self.down(x))
        up = F.interpolate(deep, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, up], dim=1))


class KeypointNet(nn.Module):
    """``(image (N,1,H,W), modality (N,1)) -> (repeatability, reliability, descriptors)``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.prior = StructuralPrior(cfg.prior_sigmas)
        stacked = 1 + self.prior.channels
        self.attention = PriorAttention(stacked, max(4, cfg.width // 2))
        self.adapters = nn.ModuleList([Adapter(stacked, cfg.width), Adapter(stacked, cfg.width)])
        self.encoder = DilatedEncoder(cfg.width, cfg.dilations)
        feat = 4 * cfg.width
        self.descriptor_head = conv(feat, cfg.descriptor_dim, 1)
        self.repeatability_head = conv(feat, 1, 1)
        self.reliability_head = conv(cfg.descriptor_dim, 1, 1)

    def features(self, image: torch.Tensor, modality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense features ``(N, 4 * width, H, W)`` and repeatability ``(N, 1, H, W)``."""
        stacked = self.attention(torch.cat([image, self.prior(image)], dim=1))
        m = modality.reshape(-1, 1, 1, 1)
        adapted = (1.0 - m) * self.adapters[0](stacked) + m * self.adapters[1](stacked)
        feat = self.encoder(adapted)
        return feat, torch.sigmoid(self.repeatability_head(feat))

    def describe(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Descriptors (L2-normalised over dim 1) and reliability of features ``(N, C, ...)``.

        Both heads are per pixel (1x1), so training evaluates them only where the loss
        samples the features; the exported graph applies them densely.
        """
        desc = F.normalize(self.descriptor_head(feat), p=2.0, dim=1, eps=1e-6)
        return desc, torch.sigmoid(self.reliability_head(desc * desc))

    def forward(
        self, image: torch.Tensor, modality: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat, repeatability = self.features(image, modality)
        desc, reliability = self.describe(feat)
        return repeatability, reliability, desc

    def receptive_field(self) -> int:
        """Receptive field (pixels, one side) of one output pixel, for the tile overlap."""
        rf = 2 * self.prior.pad + 1
        rf += 2 + 2  # attention 3x3, adapter 3x3
        rf += 2  # down 3x3 (stride 2)
        rf += sum(2 * 2 * d for d in self.cfg.dilations)  # dilated 3x3 at half resolution
        return rf


def build_model(cfg: ModelConfig) -> KeypointNet:
    return KeypointNet(cfg)
