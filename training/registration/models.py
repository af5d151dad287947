"""Networks: a small shared ResNet-style encoder of dense embeddings and a Siamese shift regressor.

The encoder is modality-agnostic (SAR and optical go through the same weights,
as the engine's feature-extractor protocol calls one extractor for both
images). Its first operation standardises each sample over ``H, W``, so the
absolute scale of the (``prepare_image``'d) input does not matter. Output:
``(N, D, H / s, W / s)`` embeddings, L2-normalised over ``D`` at every location.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

OUT_STRIDES = (1, 2, 4)


@dataclass(frozen=True)
class ModelConfig:
    """Encoder shape. ``out_stride`` 1 gives a full-resolution map (upsampled decoder path)."""

    widths: tuple[int, int] = (16, 32)
    blocks: int = 2
    embed_dim: int = 16
    out_stride: int = 1
    regressor_width: int = 32

    def __post_init__(self) -> None:
        if self.out_stride not in OUT_STRIDES:
            raise ValueError(f"out_stride must be one of {OUT_STRIDES}, got {self.out_stride}.")
        if self.embed_dim < 2 or min(self.widths) < 2 or self.blocks < 1:
            raise ValueError("embed_dim and widths must be >= 2 and blocks >= 1.")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        return cls(**d)


def _conv_bn(cin: int, cout: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, padding_mode="replicate"),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity shortcut."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(c, c), _conv_bn(c, c, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


def standardise(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample, per-channel zero mean / unit variance over ``H, W`` (exported as plain ONNX ops)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


class Encoder(nn.Module):
    """``(N, 1, H, W)`` -> ``(N, D, H / s, W / s)`` L2-normalised embeddings."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c0, c1 = cfg.widths
        self.stem = nn.Sequential(_conv_bn(1, c0), ResBlock(c0))
        self.down = nn.Sequential(_conv_bn(c0, c1, stride=2), *[ResBlock(c1) for _ in range(cfg.blocks)])
        self.down2: nn.Module | None = None
        self.fuse: nn.Module | None = None
        if cfg.out_stride == 4:
            self.down2 = nn.Sequential(_conv_bn(c1, c1, stride=2), ResBlock(c1))
        if cfg.out_stride == 1:  # 1x1 fusion of the full-resolution and upsampled paths (cheap on CPU)
            self.fuse = nn.Sequential(
                nn.Conv2d(c0 + c1, c1, 1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True)
            )
        self.head = nn.Conv2d(c1, cfg.embed_dim, 1)

    @property
    def stride(self) -> int:
        return self.cfg.out_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = standardise(x)
        full = self.stem(x)
        y = self.down(full)
        if self.down2 is not None:
            y = self.down2(y)
        if self.fuse is not None:
            up = F.interpolate(y, size=full.shape[-2:], mode="bilinear", align_corners=False)
            y = self.fuse(torch.cat([full, up], dim=1))
        return F.normalize(self.head(y), dim=1, eps=1e-6)

    def receptive_field(self) -> int:
        """Approximate receptive field (input pixels) of one output location."""
        rf, jump = 1, 1
        convs = [(3, 1)] * 3 + [(3, 2)] + [(3, 1)] * (2 * self.cfg.blocks)
        if self.cfg.out_stride == 4:
            convs += [(3, 2), (3, 1), (3, 1)]
        for k, s in convs:
            rf += (k - 1) * jump
            jump *= s
        return rf


class ShiftRegressor(nn.Module):
    """Siamese head: embeddings of ``a`` (INPUT) and ``b`` (REFERENCE) -> ``(dx, dy)`` pixels.

    Convention (the engine's): the content at ``(x, y)`` of ``a`` lies at ``(x + dx, y + dy)`` in ``b``.
    """

    def __init__(self, encoder: Encoder, width: int = 32) -> None:
        super().__init__()
        self.encoder = encoder
        d = encoder.cfg.embed_dim
        self.body = nn.Sequential(
            nn.Conv2d(3 * d, width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
        )
        self.out = nn.Linear(2 * width, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ea, eb = self.encoder(a), self.encoder(b)
        h = self.body(torch.cat([ea, eb, ea * eb], dim=1)).mean(dim=(2, 3))
        return self.out(h) * float(self.encoder.stride)


class RegistrationNet(nn.Module):
    """What a checkpoint holds: the encoder and (phase 2) the regressor sharing it."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.regressor = ShiftRegressor(self.encoder, cfg.regressor_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def build_model(cfg: ModelConfig) -> RegistrationNet:
    return RegistrationNet(cfg)
