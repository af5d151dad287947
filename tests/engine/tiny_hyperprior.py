"""A tiny random hyperprior (random IntNets, Gaussian pmfs built here) for the codec tests.

No trained weights: the nets are random, so the model codes inefficiently but exactly - which is
all the engine's tests need (integer round trips, determinism, refusals).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import norm

from engine.codec.entropy import EntropyModelTable
from engine.codec.hyperprior import HyperpriorModel, ScaleTable, scale_pmf_table
from engine.codec.intnet import IntNet

WEIGHT_BITS, FRAC_BITS = 12, 10
SCALES = ScaleTable(log2_min=-1.0, log2_step=0.75, count=12)


def gaussian_pmfs(scales: ScaleTable) -> tuple[list[int], list[np.ndarray]]:
    """Discretised zero-mean Gaussians over ``+-ceil(8 sigma)`` (at least +-1) per scale."""
    offsets, pmfs = [], []
    for sigma in scales.sigmas():
        half = max(1, int(np.ceil(8 * sigma)))
        q = np.arange(-half, half + 1, dtype=np.float64)
        pmfs.append(norm.cdf((q + 0.5) / sigma) - norm.cdf((q - 0.5) / sigma))
        offsets.append(-half)
    return offsets, pmfs


def _conv(rng: np.random.Generator, cout: int, cin: int, k: int, stride: int = 1, upsample: int = 1,
          relu: bool = True, gain: float = 0.4) -> tuple[np.ndarray, np.ndarray, int, int, bool]:
    weight = rng.normal(0.0, gain / np.sqrt(cin * k * k), (cout, cin, k, k))
    return weight, rng.normal(0.0, 0.2, cout), stride, upsample, relu


def _z_table(channels: int) -> EntropyModelTable:
    support = np.arange(-6, 7, dtype=np.float64)
    pmfs = [norm.cdf((support + 0.5) / 1.5) - norm.cdf((support - 0.5) / 1.5) for _ in range(channels)]
    return EntropyModelTable.from_pmfs(np.linspace(-0.2, 0.3, channels), [-6] * channels, pmfs)


def tiny_hyperprior(channels: int = 4, z_channels: int = 2, slices: tuple[int, ...] = (0, 1, 4),
                    latent_step: float = 0.5, seed: int = 0) -> HyperpriorModel:
    """A random hyperprior for ``channels`` latent channels (the tiny codec has 4)."""
    rng = np.random.default_rng(seed)

    def net(layers: list[tuple[np.ndarray, np.ndarray, int, int, bool]]) -> IntNet:
        return IntNet.from_float(layers, WEIGHT_BITS, FRAC_BITS)

    analysis = net([_conv(rng, 6, channels, 3, stride=2), _conv(rng, z_channels, 6, 3, stride=2, relu=False,
                                                                gain=2.0)])
    synthesis = net([_conv(rng, 6, z_channels, 3, upsample=2), _conv(rng, 2 * channels, 6, 3, upsample=2,
                                                                     relu=False, gain=3.0)])
    context = tuple(
        net([_conv(rng, 2 * (hi - lo), 2 * (hi - lo) + lo, 3, relu=False, gain=1.0)])
        for lo, hi in itertools.pairwise(slices[1:])
    )
    offsets, pmfs = gaussian_pmfs(SCALES)
    return HyperpriorModel(latent_step, analysis, _z_table(z_channels), synthesis, tuple(slices), context,
                           SCALES, scale_pmf_table(offsets, pmfs))
