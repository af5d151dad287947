"""Networks: shared encoders of dense embeddings and a Siamese shift regressor.

Two encoder architectures (``ModelConfig.arch``), both modality-agnostic (SAR and
optical go through the same weights, as the engine's feature-extractor protocol
calls one extractor for both images):

* ``resnet`` - a small ResNet-style encoder. Its first operation standardises each
  sample over ``H, W``, so the absolute scale of the (``prepare_image``'d) input does
  not matter. Output ``(N, D, H / s, W / s)``, L2-normalised over ``D`` at every location.
* ``guided`` - the classical method's oriented-gradient channels computed inside the
  network (:class:`OrientedGradients`, fixed weights, the same recipe as
  :class:`engine.registration.features.OrientedGradientFeatures`) plus a learned
  residual whose last layer starts at zero: at step 0 the embedding *is* the
  classical feature volume, and training can only move it where the matching loss
  improves. Output ``(N, D, H, W)`` with the ``orientations`` channels first, not
  normalised per pixel (the local contrast normalisation of the classical features
  keeps the relative edge strength the search relies on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..config import ConfigDict

OUT_STRIDES = (1, 2, 4)
ARCHITECTURES = ("resnet", "guided")


@dataclass(frozen=True)
class ModelConfig(ConfigDict):
    """Encoder shape. ``out_stride`` 1 gives a full-resolution map (upsampled decoder path)."""

    widths: tuple[int, int] = (16, 32)
    blocks: int = 2
    embed_dim: int = 16
    out_stride: int = 1
    regressor_width: int = 32
    arch: str = "resnet"
    orientations: int = 9  # guided: classical oriented-gradient channels (the first of the embed_dim)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {ARCHITECTURES}, got {self.arch!r}.")
        if self.out_stride not in OUT_STRIDES:
            raise ValueError(f"out_stride must be one of {OUT_STRIDES}, got {self.out_stride}.")
        if self.embed_dim < 2 or min(self.widths) < 2 or self.blocks < 1:
            raise ValueError("embed_dim and widths must be >= 2 and blocks >= 1.")
        if self.arch == "guided" and (self.out_stride != 1 or self.embed_dim < self.orientations):
            raise ValueError(
                f"the guided encoder needs out_stride 1 and embed_dim >= orientations ({self.orientations}), "
                f"got out_stride {self.out_stride}, embed_dim {self.embed_dim}."
            )


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


def gauss_taps(sigma: float, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian taps over ``[-radius, radius]``."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def separable_filter(x: torch.Tensor, kx: torch.Tensor, ky: torch.Tensor) -> torch.Tensor:
    """Depthwise separable filter of ``(N, C, H, W)`` with edges replicated (scipy's ``mode="nearest"``).

    ``kx`` ``(C, 1, 1, 2r+1)`` and ``ky`` ``(C, 1, 2r+1, 1)``: the taps along x and y, per channel.
    """
    rx, ry = kx.shape[-1] // 2, ky.shape[-2] // 2
    x = F.conv2d(F.pad(x, (rx, rx, 0, 0), mode="replicate"), kx, groups=kx.shape[0])
    return F.conv2d(F.pad(x, (0, 0, ry, ry), mode="replicate"), ky, groups=ky.shape[0])


class OrientedGradients(nn.Module):
    """The classical method's oriented-gradient channels as fixed torch operations (exportable to ONNX).

    Same recipe and defaults as :class:`engine.registration.features.OrientedGradientFeatures`
    (Gaussian pre-smoothing with scipy's 4-sigma support, central differences, ``|cos a gx + sin a gy|``
    over [0, 180) degrees, 3-sigma spatial smoothing, circular [1, 2, 1] / 4 across orientations,
    division by a Gaussian-smoothed norm), edges replicated as scipy's ``mode="nearest"``. The one
    difference: the small regulariser of the division is 1e-3 x the *mean* norm of the window
    (the classical code takes the median, which ONNX has no cheap operator for).
    """

    project: torch.Tensor
    mix: torch.Tensor
    diff_x: torch.Tensor
    diff_y: torch.Tensor

    def __init__(self, orientations: int, sigma: float, pre_sigma: float, norm_sigma: float) -> None:
        # every tensor here is a constant of the recipe: buffers outside the state dict
        super().__init__()
        self.orientations = orientations
        angles = torch.arange(orientations, dtype=torch.float32) * (math.pi / orientations)
        self.register_buffer(
            "project",
            torch.stack([torch.cos(angles), torch.sin(angles)], 1)[:, :, None, None],
            persistent=False,
        )
        eye = torch.eye(orientations)
        mix = 0.5 * eye + 0.25 * (torch.roll(eye, 1, 0) + torch.roll(eye, -1, 0))
        self.register_buffer("mix", mix[:, :, None, None], persistent=False)
        self.radii: dict[str, int] = {}
        for name, sig, radius, channels in (
            ("pre", pre_sigma, int(4 * pre_sigma + 0.5), 1),
            ("smooth", sigma, max(1, math.ceil(3 * sigma)), orientations),
            ("norm", norm_sigma, int(4 * norm_sigma + 0.5), 1),
        ):
            taps = gauss_taps(sig, radius)
            self.register_buffer(
                f"{name}_x", taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), persistent=False
            )
            self.register_buffer(
                f"{name}_y", taps.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), persistent=False
            )
            self.radii[name] = radius
        self.register_buffer("diff_x", torch.tensor([-0.5, 0.0, 0.5]).view(1, 1, 1, 3), persistent=False)
        self.register_buffer("diff_y", torch.tensor([-0.5, 0.0, 0.5]).view(1, 1, 3, 1), persistent=False)

    @classmethod
    def like_classical(cls, orientations: int) -> OrientedGradients:
        """The recipe of the engine's classical extractor (its defaults) with ``orientations`` channels."""
        from engine.registration.features import OrientedGradientFeatures

        ref = OrientedGradientFeatures(orientations=orientations)
        return cls(ref.orientations, ref.sigma, ref.pre_sigma, ref.norm_sigma)

    def _separable(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """Gaussian ``name`` (depthwise, separable) with replicated edges, ``x`` ``(N, C, H, W)``."""
        return separable_filter(x, getattr(self, f"{name}_x"), getattr(self, f"{name}_y"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._separable(x, "pre")
        gx = F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), self.diff_x)
        gy = F.conv2d(F.pad(x, (0, 0, 1, 1), mode="replicate"), self.diff_y)
        feats = torch.abs(F.conv2d(torch.cat([gx, gy], 1), self.project))
        feats = F.conv2d(self._separable(feats, "smooth"), self.mix)
        norm_sq = (feats**2).sum(dim=1, keepdim=True)
        norm = torch.sqrt(self._separable(norm_sq, "norm"))
        eps = 1e-3 * torch.sqrt(norm_sq).mean(dim=(1, 2, 3), keepdim=True) + 1e-12
        return feats / (norm + eps)


class GuidedEncoder(nn.Module):
    """Classical oriented-gradient channels plus a learned residual (zero at initialisation).

    ``(N, 1, H, W)`` -> ``(N, D, H, W)``: channels ``[0, orientations)`` are the classical channels
    plus their learned correction, the remaining ``D - orientations`` channels are learned (zero at
    step 0). The residual sees the standardised image and the classical channels.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.orientations
        c0, c1 = cfg.widths
        self.gradients = OrientedGradients.like_classical(k)
        self.stem = nn.Sequential(
            nn.Conv2d(1 + k, c0, 3, padding=1, padding_mode="replicate"), nn.ReLU(inplace=True)
        )
        self.context = nn.Sequential(
            nn.Conv2d(c0, c1, 3, padding=2, dilation=2, padding_mode="replicate"),
            nn.ReLU(inplace=True),
            *[
                layer
                for _ in range(cfg.blocks)
                for layer in (
                    nn.Conv2d(c1, c1, 3, padding=2, dilation=2, padding_mode="replicate"),
                    nn.ReLU(inplace=True),
                )
            ],
        )
        self.head = nn.Conv2d(c0 + c1, cfg.embed_dim, 1)
        nn.init.zeros_(self.head.weight)  # the residual starts at zero: step 0 is the classical method
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)

    @property
    def stride(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        classical = self.gradients(x)
        full = self.stem(torch.cat([standardise(x), classical], dim=1))
        residual = self.head(torch.cat([full, self.context(full)], dim=1))
        pad = self.cfg.embed_dim - self.cfg.orientations
        return F.pad(classical, (0, 0, 0, 0, 0, pad)) + residual

    def receptive_field(self) -> int:
        """Receptive field (input pixels): the classical chain's radius plus the learned layers'."""
        classical = 1 + sum(self.gradients.radii.values())  # Gaussians and the central difference
        learned = 1 + 2 * (1 + self.cfg.blocks)  # one 3x3 and (1 + blocks) dilated 3x3 convolutions
        return 2 * (classical + learned) + 1


def build_encoder(cfg: ModelConfig) -> Encoder | GuidedEncoder:
    """The encoder of ``cfg.arch``."""
    return GuidedEncoder(cfg) if cfg.arch == "guided" else Encoder(cfg)


class ShiftRegressor(nn.Module):
    """Siamese head: embeddings of ``a`` (INPUT) and ``b`` (REFERENCE) -> ``(dx, dy)`` pixels.

    Convention (the engine's): the content at ``(x, y)`` of ``a`` lies at ``(x + dx, y + dy)`` in ``b``.
    """

    def __init__(self, encoder: Encoder | GuidedEncoder, width: int = 32) -> None:
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
        self.encoder = build_encoder(cfg)
        self.regressor = ShiftRegressor(self.encoder, cfg.regressor_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def build_model(cfg: ModelConfig) -> RegistrationNet:
    return RegistrationNet(cfg)
