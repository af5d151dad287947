"""Learned factorised prior (per-channel non-parametric density) for the latents.

For each latent channel ``c`` a small monotone network models the cumulative
distribution ``F_c`` (Ballé et al. 2018, "Variational image compression with
a scale hyperprior", appendix 6.1): ``K`` layers ``x <- softplus(H_k) x + b_k``
with ``x <- x + tanh(a_k) * tanh(x)`` between them; ``F_c = sigmoid(logits)``.

* Training: additive uniform noise ``y + U(-0.5, 0.5)`` is the quantisation
  proxy for the rate term.
* Evaluation: ``y_hat = round(y - m_c) + m_c`` with ``m_c`` the channel median.

The likelihood of a (noisy or quantised) latent is ``F(y + 0.5) - F(y - 0.5)``.
:meth:`FactorizedPrior.discretise` turns the density into the per-channel
integer pmf table shipped in the decoder/encoder metadata.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.functional import softplus

LIKELIHOOD_BOUND = 1e-9


class FactorizedPrior(nn.Module):
    """Per-channel learned cumulative distribution over scalar latents."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(dims) - 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    # ------------------------------------------------------------- density
    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``[C, 1, N]`` -> logits of ``F_c(x)``, same shape."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            x = torch.matmul(softplus(matrix), x) + bias
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def _likelihood_flat(self, v: torch.Tensor) -> torch.Tensor:
        lower = self.logits_cdf(v - 0.5)
        upper = self.logits_cdf(v + 0.5)
        # evaluate in the tail where the sigmoid is most precise
        # (never 0: at the exact centre both sigmoids would cancel to a zero likelihood)
        sign = torch.where(lower + upper > 0, -1.0, 1.0).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return torch.clamp(lik, min=LIKELIHOOD_BOUND)

    def likelihood(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Likelihood of each element of ``y_hat`` ``[N, C, H, W]`` (same shape)."""
        n, c, h, w = y_hat.shape
        flat = y_hat.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lik = self._likelihood_flat(flat)
        return lik.reshape(c, n, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def quantiles(self, p: float, iters: int = 40, bound: float = 2e3) -> torch.Tensor:
        """Per-channel ``x`` with ``F_c(x) = p`` by bisection (``[C]``)."""
        target = math.log(p / (1.0 - p))
        device = self.matrices[0].device
        lo = torch.full((self.channels, 1, 1), -bound, device=device)
        hi = torch.full((self.channels, 1, 1), bound, device=device)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            below = self.logits_cdf(mid) < target
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        return (0.5 * (lo + hi)).reshape(-1)

    def medians(self) -> torch.Tensor:
        """Per-channel medians ``m_c`` (``[C]``, no gradient)."""
        return self.quantiles(0.5)

    # ------------------------------------------------------------ forward
    def forward(
        self, y: torch.Tensor, noise: bool, medians: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(y_rate, y_dec, likelihoods)``.

        ``noise=True`` (training): ``y_rate = y + U(-0.5, 0.5)`` gives the
        likelihoods and ``y_dec`` is ``round(y - m) + m`` with a straight-through
        gradient (what the decoder sees at run time). ``noise=False``: both are
        the quantised latents.
        """
        m = self.medians() if medians is None else medians
        m = m.reshape(1, -1, 1, 1)
        quantised = torch.round(y - m) + m
        y_dec = y + (quantised - y).detach()
        y_rate = y + torch.empty_like(y).uniform_(-0.5, 0.5) if noise else quantised
        return y_rate, y_dec, self.likelihood(y_rate)

    # --------------------------------------------------------- discretise
    @torch.no_grad()
    def discretise(self, tail_mass: float = 1e-7, max_length: int = 4096) -> tuple[
        list[float], list[int], list[list[float]]
    ]:
        """Integer pmf table per channel: ``(medians, offsets, pmfs)``.

        ``pmfs[c][i]`` is ``P(q = offsets[c] + i)`` with ``q = round(y - m_c)``,
        covering ``[F^-1(tail_mass/2), F^-1(1 - tail_mass/2)]`` (at most
        ``max_length`` symbols, kept centred on the median).
        """
        med = self.medians()
        low = self.quantiles(tail_mass / 2)
        high = self.quantiles(1 - tail_mass / 2)
        medians: list[float] = []
        offsets: list[int] = []
        pmfs: list[list[float]] = []
        half = max_length // 2 - 1
        for c in range(self.channels):
            m = float(med[c])
            q_lo = max(math.floor(float(low[c]) - m), -half)
            q_hi = min(math.ceil(float(high[c]) - m), half)
            q = torch.arange(q_lo, q_hi + 1, dtype=torch.float32, device=med.device)
            values = (q + m).reshape(1, 1, -1)
            full = torch.zeros(self.channels, 1, values.shape[-1], device=med.device)
            full[c] = values[0]
            lik = self._likelihood_flat(full)[c, 0].double()
            pmf = lik  # sums to ~1 - tail_mass; the engine table assigns the rest to its escape
            medians.append(m)
            offsets.append(int(q_lo))
            pmfs.append([float(v) for v in pmf])
        return medians, offsets, pmfs


def bits_per_pixel(likelihoods: torch.Tensor, num_pixels: int) -> torch.Tensor:
    """Estimated rate of all latents in bits per input pixel."""
    return torch.sum(-torch.log2(likelihoods)) / num_pixels
