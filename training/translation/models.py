"""Pix2pix networks: a U-Net generator and a 70 x 70 PatchGAN discriminator.

The generator follows Isola et al. (2017): ``n_down`` stride-2 4x4 convolutions
(LeakyReLU 0.2, batch norm except on the first and the innermost), the same number of
4x4 transposed convolutions back up with skip connections (ReLU, batch norm, dropout
on the three innermost decoder blocks), and a tanh output. The width is ``ngf``
(64 in the paper; 8-16 keeps a CPU model small). Its input is the engine's
normalised SAR (``[0, 1]``, :func:`engine.preprocess.normalise`), mapped to
``[-1, 1]`` inside the network so the exported model takes exactly what the engine
feeds; its output is RGB in ``[-1, 1]``.

The discriminator is the 3-layer PatchGAN (receptive field 70 px) on the
SAR/optical pair concatenated along channels, optionally spectrally normalised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import ConfigDict, documented

DETAIL_SCALE = 4
"""With a detail gain floor, the SAR detail is its contrast to its mean over cells of this many colour cells
(32 px for a colour stride of 8): fields, roads and shorelines up to that size keep their brightness."""


@dataclass(frozen=True)
class ModelConfig(ConfigDict):
    """Generator and discriminator sizes (plain types: stored in checkpoints)."""

    in_bands: int = 1
    out_bands: int = 3
    ngf: int = documented(16, "generator width (64 in pix2pix)")
    n_down: int = documented(8, "U-Net levels (8: 256 px inputs)")
    ndf: int = documented(16, "discriminator width (64 in pix2pix)")
    d_layers: int = 3
    spectral_norm: bool = False
    dropout: float = 0.5
    arch: str = documented("unet", "generator: 'unet' (pix2pix) or 'colourise' (SAR luminance, own colour)")
    colour_stride: int = documented(8, "colourise: resolution step of the colour/context branch")
    smooth_sigma: float = documented(1.5, "colourise: Gaussian smoothing of the SAR detail (px)")
    detail_gain_floor: float = documented(
        0.0, "colourise: least gain of the SAR's local contrast in the luminance (0: free, may fade out)"
    )

    @property
    def generator(self) -> GeneratorArchitecture:
        """The record of :attr:`arch` (:data:`GENERATORS`)."""
        if self.arch not in GENERATORS:
            raise ValueError(f"Unknown generator '{self.arch}'; use one of {', '.join(GENERATORS)}.")
        return GENERATORS[self.arch]

    @property
    def multiple(self) -> int:
        """Input sides must be a multiple of this (``2 ** n_down``, or the colouriser's coarsest cell)."""
        return self.generator.multiple(self)

    @property
    def multiple_rule(self) -> str:
        """What :attr:`multiple` is, for error messages."""
        return self.generator.multiple_rule(self)

    def describe(self) -> str:
        """The generator in a few words (model metadata ``architecture``)."""
        return self.generator.describe(self)


def _width(ngf: int, depth: int) -> int:
    """Channels after ``depth`` downsamplings: ngf, 2 ngf, 4 ngf, then 8 ngf."""
    return ngf * min(2**depth, 8)


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int, norm: bool, act: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.LeakyReLU(0.2)] if act else []
        layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReLU(),
            nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNetGenerator(nn.Module):
    """``(n, in_bands, h, w)`` normalised SAR in ``[0, 1]`` -> ``(n, out_bands, h, w)`` RGB in ``[-1, 1]``.

    ``h`` and ``w`` must be multiples of ``2 ** n_down`` (256 for the default 8 levels).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.n_down < 2:
            raise ValueError(f"n_down must be >= 2, got {cfg.n_down}.")
        self.cfg = cfg
        n = cfg.n_down
        widths = [_width(cfg.ngf, d) for d in range(n)]  # channels after down block d
        downs = [_Down(cfg.in_bands, widths[0], norm=False, act=False)]
        for d in range(1, n):
            downs.append(_Down(widths[d - 1], widths[d], norm=d < n - 1, act=True))
        self.downs = nn.ModuleList(downs)
        ups = []
        for d in range(n - 1, 0, -1):  # decoder block producing the resolution of down block d-1
            cin = widths[d] if d == n - 1 else 2 * widths[d]
            ups.append(_Up(cin, widths[d - 1], cfg.dropout if d >= n - 3 else 0.0))
        self.ups = nn.ModuleList(ups)
        self.final = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(2 * widths[0], cfg.out_bands, 4, 2, 1), nn.Tanh()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x * 2.0 - 1.0
        skips = []
        for down in self.downs:
            h = down(h)
            skips.append(h)
        skips.pop()  # the innermost feature map is the decoder's input, not a skip
        for up in self.ups:
            h = torch.cat([up(h), skips.pop()], dim=1)
        return self.final(h)


class PatchDiscriminator(nn.Module):
    """70 x 70 PatchGAN on ``cat(sar, rgb)``: one real/fake logit per overlapping patch."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()

        def conv(cin: int, cout: int, stride: int, bias: bool) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 4, stride, 1, bias=bias)
            return nn.utils.spectral_norm(layer) if cfg.spectral_norm else layer

        ndf, n = cfg.ndf, cfg.d_layers
        norm = not cfg.spectral_norm
        layers: list[nn.Module] = [conv(cfg.in_bands + cfg.out_bands, ndf, 2, True), nn.LeakyReLU(0.2)]
        cin = ndf
        for i in range(1, n + 1):
            cout = ndf * min(2**i, 8)
            layers.append(conv(cin, cout, 2 if i < n else 1, not norm))
            if norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        layers.append(conv(cin, 1, 1, True))
        self.body = nn.Sequential(*layers)

    def forward(self, sar: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([sar * 2.0 - 1.0, rgb], dim=1))


def init_weights(module: nn.Module) -> None:
    """Pix2pix initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            weight = getattr(m, "weight_orig", m.weight)
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@dataclass(frozen=True)
class GeneratorArchitecture:
    """What one generator architecture (:attr:`ModelConfig.arch`) means: how it is built, the rule on its
    input sides, its description and whether pix2pix's weight initialisation applies."""

    build: Callable[[ModelConfig], nn.Module]
    multiple: Callable[[ModelConfig], int]
    multiple_rule: Callable[[ModelConfig], str]
    describe: Callable[[ModelConfig], str]
    pix2pix_init: bool


def _colouriser(cfg: ModelConfig) -> nn.Module:
    from .colourise import ColouriseGenerator  # it imports this module

    return ColouriseGenerator(cfg)


def _colour_cell(cfg: ModelConfig) -> int:
    """The colouriser's coarsest cell: the colour stride (times :data:`DETAIL_SCALE` with a gain floor)."""
    return cfg.colour_stride * (DETAIL_SCALE if cfg.detail_gain_floor > 0 else 1)


def _colour_cell_rule(cfg: ModelConfig) -> str:
    return f"{DETAIL_SCALE} x the colour stride" if cfg.detail_gain_floor > 0 else "the colour stride"


def _colouriser_description(cfg: ModelConfig) -> str:
    detail = (f"local contrast x a gain >= {cfg.detail_gain_floor:g}" if cfg.detail_gain_floor > 0
              else "learned tone curve")
    return (f"colouriser: SAR luminance (Gaussian sigma {cfg.smooth_sigma:g} px, {detail}), colour and "
            f"large-scale luminance at 1/{cfg.colour_stride} resolution, width {cfg.ngf}")


GENERATORS: dict[str, GeneratorArchitecture] = {
    "unet": GeneratorArchitecture(
        UNetGenerator, lambda cfg: 2**cfg.n_down, lambda cfg: "2**n_down",
        lambda cfg: f"pix2pix U-Net, {cfg.n_down} levels, ngf {cfg.ngf}", pix2pix_init=True),
    "colourise": GeneratorArchitecture(_colouriser, _colour_cell, _colour_cell_rule, _colouriser_description,
                                       pix2pix_init=False),
}
ARCHITECTURES = tuple(GENERATORS)


def generator_config(gen: nn.Module) -> ModelConfig:
    """The :class:`ModelConfig` a generator (or a wrapper of one) was built with."""
    cfg = getattr(gen, "cfg", None)
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"{type(gen).__name__} carries no ModelConfig (.cfg).")
    return cfg


def build_generator(cfg: ModelConfig) -> nn.Module:
    """The generator ``cfg.arch`` names (:data:`GENERATORS`), its ``cfg`` attached."""
    return cfg.generator.build(cfg)


def build_models(cfg: ModelConfig) -> tuple[nn.Module, PatchDiscriminator]:
    """Generator (initialised as pix2pix does for the U-Net; the colouriser keeps its own start) and
    discriminator."""
    g, d = build_generator(cfg), PatchDiscriminator(cfg)
    if cfg.generator.pix2pix_init:
        init_weights(g)
    init_weights(d)
    return g, d
