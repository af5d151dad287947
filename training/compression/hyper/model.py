"""Hyperprior entropy model of the codec's latents, in PyTorch, mirroring ``engine.codec.intnet``.

Mean-scale hyperprior (Ballé et al. 2018; Minnen et al. 2018) with channel-slice context
(Minnen & Singh 2020), on the latents ``y`` of a frozen shipped transform:

* ``u = y / latent_step``; analysis ``u -> z`` (two stride-2 layers), ``z`` coded with a
  :class:`~training.compression.entropy.FactorizedPrior` as ``z_hat = round(z - m_c)``;
* synthesis ``z_hat -> (mu, log2 sigma)`` for every latent (two x2 upsamplings);
* slices ``[s_0 = 0, s_1, ..., C]``: slice ``k >= 1`` refines its ``(mu, log2 sigma)`` with a context
  network that sees the synthesis output of the slice and the decoded ``y_hat`` of all earlier slices;
* symbols ``q = round(u - mu)`` under a discretised zero-mean Gaussian of scale ``sigma``.

Every network is a chain of ``[Upsample(x2, nearest)] -> Conv2d(k, stride, padding=k // 2) -> [ReLU]``,
layer for layer what :class:`engine.codec.intnet.IntNet` evaluates in fixed point, so
:meth:`MirrorNet.to_intnet` is a plain quantisation of the weights.

Rate (training): ``-log2`` of the discretised Gaussian likelihood of ``u - mu`` with additive uniform
noise as the quantisation proxy (``noise=True``), or of the rounded symbols with straight-through
gradients (``noise=False``: what the coder sees, used at the end of training).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from engine.codec.intnet import IntNet

from ...config import ConfigDict
from ..entropy import LIKELIHOOD_BOUND, FactorizedPrior


class LayerSpec(NamedTuple):
    """One IntNet-compatible layer."""

    cin: int
    cout: int
    k: int = 3
    stride: int = 1
    upsample: int = 1
    relu: bool = True


class MirrorNet(nn.Module):
    """A conv chain that :class:`IntNet` evaluates exactly after :meth:`to_intnet`."""

    def __init__(self, specs: Sequence[LayerSpec]) -> None:
        super().__init__()
        self.specs = tuple(specs)
        layers: list[nn.Module] = []
        for s in self.specs:
            if s.upsample > 1:
                layers.append(nn.Upsample(scale_factor=s.upsample, mode="nearest"))
            layers.append(nn.Conv2d(s.cin, s.cout, s.k, s.stride, padding=s.k // 2))
            if s.relu:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.body if isinstance(m, nn.Conv2d)]

    def float_layers(self) -> list[tuple[np.ndarray, np.ndarray, int, int, bool]]:
        """``(weight, bias, stride, upsample, relu)`` per layer, as :meth:`IntNet.from_float` takes them."""
        out = []
        for spec, conv in zip(self.specs, self.convs(), strict=True):
            bias = conv.bias if conv.bias is not None else torch.zeros(spec.cout)
            out.append((conv.weight.detach().double().numpy(), bias.detach().double().numpy(),
                        spec.stride, spec.upsample, spec.relu))
        return out

    def to_intnet(self, weight_bits: int, frac_bits: int) -> IntNet:
        return IntNet.from_float(self.float_layers(), weight_bits, frac_bits)


@dataclass(frozen=True)
class HyperConfig(ConfigDict):
    """Architecture and scale range of the hyperprior (stored in checkpoints)."""

    channels: int = 256
    z_channels: int = 32
    analysis_width: int = 64
    synthesis_widths: tuple[int, int] = (64, 96)
    context_width: int = 64
    slices: tuple[int, ...] = (0, 16, 64, 256)
    latent_step: float = 1.0
    log2_min: float = -3.25
    log2_max: float = 8.5

    def check(self) -> None:
        s = self.slices
        if len(s) < 2 or s[0] != 0 or s[-1] != self.channels or any(b <= a for a, b in itertools.pairwise(s)):
            raise ValueError(f"slices {list(s)} must rise strictly from 0 to the latent channels "
                             f"{self.channels}.")
        if self.latent_step <= 0:
            raise ValueError(f"latent_step must be > 0, got {self.latent_step}.")


def analysis_specs(cfg: HyperConfig) -> list[LayerSpec]:
    w = cfg.analysis_width
    return [LayerSpec(cfg.channels, w, 1), LayerSpec(w, w, 3, stride=2),
            LayerSpec(w, cfg.z_channels, 3, stride=2, relu=False)]


def synthesis_specs(cfg: HyperConfig) -> list[LayerSpec]:
    w1, w2 = cfg.synthesis_widths
    return [LayerSpec(cfg.z_channels, w1, 3, upsample=2), LayerSpec(w1, w2, 3, upsample=2),
            LayerSpec(w2, 2 * cfg.channels, 1, relu=False)]


def context_specs(cfg: HyperConfig, k: int) -> list[LayerSpec]:
    """Slice ``k >= 1``: input ``2 n_k + s_k`` channels (its (mu, log2 sigma), then earlier y_hat)."""
    n = cfg.slices[k + 1] - cfg.slices[k]
    return [LayerSpec(2 * n + cfg.slices[k], cfg.context_width, 1),
            LayerSpec(cfg.context_width, cfg.context_width, 3),
            LayerSpec(cfg.context_width, 2 * n, 1, relu=False)]


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding with the identity gradient."""
    return x + (torch.round(x) - x).detach()


def gaussian_likelihood(v: torch.Tensor, log2_sigma: torch.Tensor) -> torch.Tensor:
    """``P(v)`` of a zero-mean Gaussian of scale ``2**log2_sigma`` integrated over ``[v - 0.5, v + 0.5]``
    (evaluated in the lower tail, where ``erfc`` is precise)."""
    sigma = torch.exp2(log2_sigma)
    a = torch.abs(v)
    upper = 0.5 * torch.erfc(-(0.5 - a) / (sigma * math.sqrt(2.0)))
    lower = 0.5 * torch.erfc(-(-0.5 - a) / (sigma * math.sqrt(2.0)))
    return torch.clamp(upper - lower, min=LIKELIHOOD_BOUND)


class RateTerms(NamedTuple):
    bits_y: torch.Tensor  # scalar: total bits of the latents
    bits_z: torch.Tensor  # scalar: total bits of the side information


class HyperPrior(nn.Module):
    """Analysis, synthesis, slice context networks and the factorised prior of ``z``."""

    def __init__(self, cfg: HyperConfig) -> None:
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.analysis = MirrorNet(analysis_specs(cfg))
        self.synthesis = MirrorNet(synthesis_specs(cfg))
        self.context = nn.ModuleList(MirrorNet(context_specs(cfg, k)) for k in range(1, len(cfg.slices) - 1))
        self.z_prior: FactorizedPrior = FactorizedPrior(cfg.z_channels)
        with torch.no_grad():  # start at sigma ~ 2, mu ~ 0
            bias = self.synthesis.convs()[-1].bias
            assert bias is not None
            bias[cfg.channels:] = 1.0

    def context_nets(self) -> list[MirrorNet]:
        """The context network of each slice ``k >= 1``."""
        return [net for net in self.context if isinstance(net, MirrorNet)]

    def _log2_sigma(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.clamp(raw, self.cfg.log2_min, self.cfg.log2_max)

    def likelihoods(
        self, u: torch.Tensor, noise: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """``(u_hat, likelihoods of y per slice, likelihoods of z)`` of latents ``u`` (``y / latent_step``,
        ``[N, C, h, w]``); ``u_hat = round(u - mu) + mu`` with straight-through gradients (what the
        decoder network receives, divided by the latent step)."""
        c, (h, w) = self.cfg.channels, u.shape[-2:]
        z = self.analysis(u)
        m = self.z_prior.medians().reshape(1, -1, 1, 1)
        z_sym = z - m + torch.empty_like(z).uniform_(-0.5, 0.5) if noise else ste_round(z - m)
        lik_z = self.z_prior.likelihood(z_sym + m)
        params = self.synthesis(z_sym)[..., :h, :w]
        lik_y: list[torch.Tensor] = []
        decoded: list[torch.Tensor] = []
        s = self.cfg.slices
        for k in range(len(s) - 1):
            mu, log2s = params[:, s[k]:s[k + 1]], params[:, c + s[k]:c + s[k + 1]]
            if k > 0:
                out = self.context[k - 1](torch.cat([mu, log2s, *decoded], dim=1))
                n = s[k + 1] - s[k]
                mu, log2s = out[:, :n], out[:, n:]
            centred = u[:, s[k]:s[k + 1]] - mu
            decoded.append(ste_round(centred) + mu)
            v = centred + torch.empty_like(centred).uniform_(-0.5, 0.5) if noise else ste_round(centred)
            lik_y.append(gaussian_likelihood(v, self._log2_sigma(log2s)))
        return torch.cat(decoded, dim=1), lik_y, lik_z

    def forward(self, u: torch.Tensor, noise: bool) -> RateTerms:
        """Bits of latents ``u`` (``y / latent_step``, ``[N, C, h, w]``) and of their side information."""
        _, lik_y, lik_z = self.likelihoods(u, noise)
        bits_y = sum((torch.sum(-torch.log2(lik)) for lik in lik_y), u.new_zeros(()))
        return RateTerms(bits_y, torch.sum(-torch.log2(lik_z)))


class HyperCodec(nn.Module):
    """A transform (encoder, decoder of :class:`~training.compression.models.SarCodec`) with a
    :class:`HyperPrior` as its entropy model (``prior``), for joint rate-distortion fine-tuning.

    ``forward`` has :class:`SarCodec`'s contract, ``(x_hat, likelihoods)``: the likelihoods of every
    latent and side-information symbol, flattened, so the codec trainer's rate term (sum of ``-log2``)
    is the hyperprior's bits. The decoder receives ``u_hat * latent_step`` as the engine decodes. The
    transform's BatchNorms stay in eval mode (statistics frozen, scale and shift trained): the warm
    start from ONNX files folds them (:mod:`training.compression.warmstart`) and fine-tuning batches
    are small.
    """

    encoder: nn.Module
    decoder: nn.Module
    prior: HyperPrior

    def __init__(self, transform: Any, hyper: HyperPrior) -> None:
        """``transform``: a module with ``encoder`` and ``decoder`` (a ``SarCodec``)."""
        super().__init__()
        self.encoder = transform.encoder
        self.decoder = transform.decoder
        self.prior = hyper

    def train(self, mode: bool = True) -> HyperCodec:
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x: torch.Tensor, noise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        step = self.prior.cfg.latent_step
        u_hat, lik_y, lik_z = self.prior.likelihoods(self.encoder(x) / step, noise)
        lik = torch.cat([t.reshape(-1) for t in (*lik_y, lik_z)])
        return self.decoder(u_hat * step), lik
