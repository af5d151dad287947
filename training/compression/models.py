"""Compression autoencoders: a registry of variants A, B and C.

Every variant maps a ``[N, 1, H, W]`` tile in ``[0, 1]`` (normalised dB) to
continuous latents ``y`` of shape ``[N, C, H/16, W/16]`` (four stride-2
stages) and back to ``[N, 1, H, W]`` in ``[0, 1]`` (sigmoid).

* ``A``: plain strided convolutions (5x5 encoder convs, 4x4 transposed-conv
  decoder, BatchNorm, LeakyReLU(0.2) in the encoder, ReLU in the decoder).
* ``B``: A plus one residual block after each stage (every resolution).
* ``C``: B plus CBAM attention (channel + spatial) at the bottleneck.
* ``D``: B plus a *linear* lapped-transform path beside the network: a 32x32
  stride-16 convolution (encoder) and its transposed twin (decoder), both
  initialised with the 16x16 orthonormal DCT basis (lowest frequencies first)
  while the network's last layers start at zero. Training therefore starts
  from a transform coder (DCT + uniform quantisation + the factorised prior)
  and the network learns corrections; the decoder output is clamped to
  ``[0, 1]`` instead of a sigmoid so the linear synthesis stays exact.

The encoder's last layer is a plain convolution producing ``y`` (no
BatchNorm, no activation) so the entropy model sees an unconstrained latent
and the rate-distortion trade-off is not destroyed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..config import ConfigDict

STAGES = 4
STRIDE = 2**STAGES  # 16: input pixels per latent cell


@dataclass(frozen=True)
class ModelConfig(ConfigDict):
    """Architecture hyper-parameters (stored in checkpoints and model cards).

    ``widths`` are the channels of the three hidden stages (at 1/2, 1/4 and
    1/8 resolution); the decoder mirrors them. ``latent_channels`` is ``C``.
    """

    variant: str = "B"
    widths: tuple[int, int, int] = (32, 48, 64)
    latent_channels: int = 64
    dct_step: float = 0.1
    """Variant D: the initial quantisation step of the DCT coefficients (in [0, 1] units); the rate
    point's starting point (about 0.3 for 0.3-0.7 bpp, 0.1 for 1-2 bpp). Training adapts it."""
    extra: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Checkpoints written before ``variant`` and ``dct_step`` existed read as variant B."""
        widths = data.get("widths", (32, 48, 64))
        assert isinstance(widths, list | tuple)
        w = tuple(int(v) for v in widths)
        if len(w) != STAGES - 1:
            raise ValueError(f"widths needs {STAGES - 1} values (one per hidden stage), got {len(w)}")
        return cls(
            variant=str(data.get("variant", "B")),
            widths=(w[0], w[1], w[2]),
            latent_channels=int(data.get("latent_channels", 64)),
            dct_step=float(data.get("dct_step", 0.1)),
        )


# ----------------------------------------------------------------- blocks
def _act(encoder: bool) -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True) if encoder else nn.ReLU(inplace=True)


def down(c_in: int, c_out: int) -> nn.Sequential:
    """5x5 stride-2 conv + BatchNorm + LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(c_out), _act(True)
    )


def up(c_in: int, c_out: int) -> nn.Sequential:
    """4x4 stride-2 transposed conv + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        _act(False),
    )


class ResBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with an identity shortcut."""

    def __init__(self, channels: int, encoder: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            _act(encoder),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.act = _act(encoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class CBAM(nn.Module):
    """Convolutional block attention: channel attention then spatial attention."""

    def __init__(self, channels: int, reduction: int = 8, kernel: int = 7) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = torch.mean(x, dim=(2, 3), keepdim=True)
        mx = torch.amax(x, dim=(2, 3), keepdim=True)
        x = x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        s = torch.cat([torch.mean(x, dim=1, keepdim=True), torch.amax(x, dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(s))


def dct_basis(channels: int, block: int = STRIDE) -> torch.Tensor:
    """The first ``channels`` orthonormal 2-D DCT-II basis images ``[channels, block, block]``.

    Ordered by frequency (``u + v``, then ``max(u, v)``, then ``u``); channels beyond
    ``block * block`` are zero.
    """
    n = torch.arange(block, dtype=torch.float64)
    k = n[:, None]
    basis_1d = torch.cos(torch.pi * (2 * n[None, :] + 1) * k / (2 * block)) * (2.0 / block) ** 0.5
    basis_1d[0] /= 2.0**0.5
    order = sorted(((u, v) for u in range(block) for v in range(block)),
                   key=lambda uv: (uv[0] + uv[1], max(uv), uv[0]))
    out = torch.zeros(channels, block, block, dtype=torch.float64)
    for c, (u, v) in enumerate(order[:channels]):
        out[c] = basis_1d[u][:, None] * basis_1d[v][None, :]
    return out.float()


class LappedAnalysis(nn.Module):
    """Linear 2*S x 2*S stride-S convolution, DCT-initialised in its central S x S block."""

    def __init__(self, channels: int, step: float) -> None:
        super().__init__()
        scale = 1.0 / step
        self.conv = nn.Conv2d(1, channels, 2 * STRIDE, stride=STRIDE, padding=STRIDE // 2)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, STRIDE // 2:STRIDE // 2 + STRIDE, STRIDE // 2:STRIDE // 2 + STRIDE] = (
                dct_basis(channels) * scale)
            assert self.conv.bias is not None
            self.conv.bias.zero_()
            self.conv.bias[0] = -0.5 * STRIDE * scale  # centre the DC latent (inputs in [0, 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class LappedSynthesis(nn.Module):
    """Transposed twin of :class:`LappedAnalysis` (its inverse at initialisation)."""

    def __init__(self, channels: int, step: float) -> None:
        super().__init__()
        scale = 1.0 / step
        self.conv = nn.ConvTranspose2d(channels, 1, 2 * STRIDE, stride=STRIDE, padding=STRIDE // 2)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, STRIDE // 2:STRIDE // 2 + STRIDE, STRIDE // 2:STRIDE // 2 + STRIDE] = (
                dct_basis(channels) / scale)
            assert self.conv.bias is not None
            self.conv.bias.fill_(0.5)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.conv(y)


def _zero_last(net: nn.Sequential) -> None:
    """Start a residual branch at zero output (its last parametrised layer zeroed)."""
    last = [m for m in net if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()


# ------------------------------------------------------------ autoencoder
class Encoder(nn.Module):
    """x [N,1,H,W] -> y [N,C,H/16,W/16]; last layer a plain conv."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w1, w2, w3 = cfg.widths
        residual = cfg.variant in ("B", "C", "D")
        layers: list[nn.Module] = []
        for c_in, c_out in ((1, w1), (w1, w2), (w2, w3)):
            layers.append(down(c_in, c_out))
            if residual:
                layers.append(ResBlock(c_out, encoder=True))
        if cfg.variant == "C":
            layers.append(CBAM(w3))
        layers.append(nn.Conv2d(w3, cfg.latent_channels, 5, stride=2, padding=2))
        self.net = nn.Sequential(*layers)
        self.linear = LappedAnalysis(cfg.latent_channels, cfg.dct_step) if cfg.variant == "D" else None
        if self.linear is not None:
            _zero_last(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return y if self.linear is None else y + self.linear(x)


class Decoder(nn.Module):
    """y_hat [N,C,h,w] -> x_hat [N,1,16h,16w] in [0, 1] (sigmoid; variant D: clamp)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w1, w2, w3 = cfg.widths
        residual = cfg.variant in ("B", "C", "D")
        layers: list[nn.Module] = [up(cfg.latent_channels, w3)]
        if cfg.variant == "C":
            layers.append(CBAM(w3))
        for c_in, c_out in ((w3, w2), (w2, w1)):
            if residual:
                layers.append(ResBlock(c_in, encoder=False))
            layers.append(up(c_in, c_out))
        if residual:
            layers.append(ResBlock(w1, encoder=False))
        layers.append(nn.ConvTranspose2d(w1, 1, 4, stride=2, padding=1))
        self.linear = LappedSynthesis(cfg.latent_channels, cfg.dct_step) if cfg.variant == "D" else None
        if self.linear is None:
            layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)
        if self.linear is not None:
            _zero_last(self.net)

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        if self.linear is None:
            return self.net(y_hat)
        return torch.clamp(self.linear(y_hat) + self.net(y_hat), 0.0, 1.0)


class CompressionAutoencoder(nn.Module):
    """Encoder + decoder of one variant (the entropy model lives beside it)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)


ModelBuilder = Callable[[ModelConfig], CompressionAutoencoder]

MODEL_VARIANTS: dict[str, str] = {
    "A": "plain strided convolutions (BatchNorm, LeakyReLU/ReLU)",
    "B": "residual blocks at each resolution",
    "C": "residual blocks + CBAM attention at the bottleneck",
    "D": "residual blocks + a DCT-initialised linear lapped-transform path "
         "(a transform coder + learned corrections)",
}


def build_autoencoder(cfg: ModelConfig) -> CompressionAutoencoder:
    """Build the autoencoder named by ``cfg.variant`` (one of :data:`MODEL_VARIANTS`)."""
    if cfg.variant not in MODEL_VARIANTS:
        raise ValueError(
            f"Unknown model variant '{cfg.variant}'; choose one of {', '.join(sorted(MODEL_VARIANTS))}."
        )
    if cfg.latent_channels < 1 or min(cfg.widths) < 1:
        raise ValueError("latent_channels and widths must be >= 1.")
    if not cfg.dct_step > 0:
        raise ValueError(f"dct_step must be > 0 (a quantisation step in [0, 1] units), got {cfg.dct_step}.")
    return CompressionAutoencoder(cfg)


class SarCodec(nn.Module):
    """Autoencoder + learned factorised prior: the trainable rate-distortion model."""

    def __init__(self, cfg: ModelConfig) -> None:
        from .entropy import FactorizedPrior

        super().__init__()
        self.cfg = cfg
        ae = build_autoencoder(cfg)
        self.encoder = ae.encoder
        self.decoder = ae.decoder
        self.prior = FactorizedPrior(cfg.latent_channels)

    def forward(self, x: torch.Tensor, noise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x_hat, likelihoods)``; ``noise`` selects the training proxy."""
        y = self.encoder(x)
        _, y_dec, lik = self.prior(y, noise=noise)
        return self.decoder(y_dec), lik
