"""A trained hyperprior as the engine reads it (``extra["hyperprior"]``), and its coding cost in numpy.

:func:`hyperprior_json` quantises the networks to :class:`engine.codec.intnet.IntNet`, discretises
the factorised prior of ``z`` into an :class:`engine.codec.entropy.EntropyModelTable` and tabulates
the scale table's zero-mean Gaussian pmfs (float64, computed once here; the engine never evaluates
a Gaussian). :class:`HyperCost` is the numpy reference of the coder, strip by strip as the engine
codes (``strip_rows`` latent rows, zero padding at strip edges): the bits of every symbol under the
coder's own probabilities (escapes included), the decoded latents ``y_hat`` and the exactness
margin of the integer networks on that data. See ``/work/wt/CODEC_V2_CONTRACT.md`` (mirrored in
docs/TRAINING.md) for the fields.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from engine.codec.entropy import MAX_PMF_LENGTH, EntropyModelTable
from engine.codec.intnet import IntNet

from .model import HyperPrior

HYPERPRIOR_KEY = "hyperprior"
HYPERPRIOR_VERSION = 1
LOG2_STEP = 1.0 / 6.0
"""Scale table spacing in log2 (sigma grows by 12 % per index)."""
TAIL_SIGMAS = 5.0
"""pmf support per scale: +-ceil(5 sigma) (mass beyond: < 6e-7, coded with the escape)."""
SIGNIFICANT_DIGITS = 6
STRIP_ROWS = 16


def _rounded(p: np.ndarray) -> list[float]:
    return [float(f"{v:.{SIGNIFICANT_DIGITS}g}") for v in p]


def scale_table(log2_min: float, log2_max: float, step: float = LOG2_STEP) -> dict[str, float | int]:
    """``sigma_i = 2 ** (log2_min + i * step)``, ``i = 0 .. count - 1``, covering ``log2_max``."""
    count = math.ceil((log2_max - log2_min) / step) + 1
    return {"log2_min": float(log2_min), "log2_step": float(step), "count": count}


def scale_pmfs(table: dict[str, Any]) -> dict[str, list[Any]]:
    """Discretised zero-mean Gaussian per scale: ``P(q) = Phi((q + 1/2) / s) - Phi((q - 1/2) / s)``."""
    offsets: list[int] = []
    pmfs: list[list[float]] = []
    half_max = MAX_PMF_LENGTH // 2 - 1
    for i in range(int(table["count"])):
        sigma = 2.0 ** (table["log2_min"] + i * table["log2_step"])
        half = min(max(1, math.ceil(TAIL_SIGMAS * sigma)), half_max)
        q = np.arange(-half, half + 1, dtype=np.float64)
        pmf = ndtr((q + 0.5) / sigma) - ndtr((q - 0.5) / sigma)
        offsets.append(-half)
        pmfs.append(_rounded(pmf))
    return {"offsets": offsets, "pmfs": pmfs}


def z_table(model: HyperPrior) -> EntropyModelTable:
    medians, offsets, pmfs = model.z_prior.discretise()
    return EntropyModelTable.from_pmfs(medians, offsets, [_rounded(np.asarray(p)) for p in pmfs])


def hyperprior_dict(model: HyperPrior, weight_bits: int = 12, frac_bits: int = 10) -> dict[str, Any]:
    """The ``extra["hyperprior"]`` object of a trained model (integer networks, tables)."""
    cfg = model.cfg
    table = scale_table(cfg.log2_min, cfg.log2_max)
    return {
        "version": HYPERPRIOR_VERSION,
        "latent_step": float(cfg.latent_step),
        "analysis": model.analysis.to_intnet(weight_bits, frac_bits).to_dict(),
        "z_table": z_table(model).to_json(),
        "synthesis": model.synthesis.to_intnet(weight_bits, frac_bits).to_dict(),
        "slices": [int(s) for s in cfg.slices],
        "context": [net.to_intnet(weight_bits, frac_bits).to_dict() for net in model.context_nets()],
        "scale_table": table,
        "scale_pmfs": scale_pmfs(table),
    }


def hyperprior_json(model: HyperPrior, weight_bits: int = 12, frac_bits: int = 10) -> str:
    return json.dumps(hyperprior_dict(model, weight_bits, frac_bits), separators=(",", ":"))


@dataclass
class StripCost:
    """Totals of :meth:`HyperCost.cost`."""

    bits_y: float
    bits_z: float
    y_hat: np.ndarray  # float32 [C, h, w], what the decoder network receives (already x latent_step)
    max_bound: float  # largest IntNet accumulator bound met (exact float64 path below 2**53)


def _bound(net: IntNet, a: np.ndarray) -> float:
    """Largest accumulator bound ``max|a| max|w| fan_in + max|b|`` of the layers of ``net`` on input ``a``."""
    worst = 0.0
    for k, layer in enumerate(net.layers):
        x = a if k == 0 else IntNet(net.layers[:k], net.weight_bits, net.frac_bits).run_fixed(a)
        w = layer.weight
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        bound = (float(np.abs(x).max(initial=0)) * float(np.abs(w).max(initial=0)) * fan_in
                 + float(np.abs(layer.bias).max(initial=0)))
        worst = max(worst, bound)
    return worst


class HyperCost:
    """Numpy reference of hyperprior coding (``extra["hyperprior"]`` as a dict)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.step = float(spec["latent_step"])
        self.analysis = IntNet.from_dict(spec["analysis"])
        self.synthesis = IntNet.from_dict(spec["synthesis"])
        self.context = [IntNet.from_dict(c) for c in spec["context"]]
        self.slices = [int(s) for s in spec["slices"]]
        self.z_table = EntropyModelTable.from_json(spec["z_table"])
        st = spec["scale_table"]
        self.frac = self.synthesis.frac_bits
        self.a_fixed = round(st["log2_min"] * 2**self.frac)
        self.d_fixed = round(st["log2_step"] * 2**self.frac)
        self.count = int(st["count"])
        pm = spec["scale_pmfs"]
        self.scales = EntropyModelTable.from_pmfs(np.zeros(self.count), pm["offsets"], pm["pmfs"])

    def scale_index(self, log2_sigma_fixed: np.ndarray) -> np.ndarray:
        i = (log2_sigma_fixed - self.a_fixed + self.d_fixed // 2) // self.d_fixed
        return np.clip(i, 0, self.count - 1)

    def _symbol_bits(self, q: np.ndarray, idx: np.ndarray) -> float:
        total = 0.0
        for i in np.unique(idx):
            sel = idx == i
            total += float(np.sum(self.scales.symbol_bits(int(i), q[sel], None)))
        return total

    def strip(self, y: np.ndarray, bounds: bool = False) -> StripCost:
        """Cost of one strip of latents ``y`` (``[C, rows, w]``); ``bounds``: also measure the IntNet
        accumulator bounds (slower)."""
        c, h, w = y.shape
        f = self.frac
        u_fixed = self.analysis.to_fixed(y.astype(np.float64) / self.step)
        z = self.analysis.to_real(self.analysis.run_fixed(u_fixed))
        zq = self.z_table.quantise(z.astype(np.float32))
        bits_z = sum(float(np.sum(self.z_table.symbol_bits(k, zq[k].ravel(), None)))
                     for k in range(zq.shape[0]))
        params = self.synthesis.run_integers(zq)[:, :h, :w]
        bound = 0.0
        if bounds:
            bound = max(_bound(self.analysis, u_fixed), _bound(self.synthesis, zq.astype(np.int64) << f))
        u = u_fixed.astype(np.float64) / 2**f
        decoded: list[np.ndarray] = []
        y_hat = np.zeros((c, h, w), np.float64)
        bits_y = 0.0
        s = self.slices
        for k in range(len(s) - 1):
            mu, log2s = params[s[k]:s[k + 1]], params[c + s[k]:c + s[k + 1]]
            if k > 0:
                inp = np.concatenate([mu, log2s, *decoded], axis=0)
                bound = max(bound, _bound(self.context[k - 1], inp)) if bounds else bound
                out = self.context[k - 1].run_fixed(inp)
                n = s[k + 1] - s[k]
                mu, log2s = out[:n], out[n:]
            q = np.rint(u[s[k]:s[k + 1]] - mu / 2**f).astype(np.int64)
            decoded.append((q << f) + mu)
            y_hat[s[k]:s[k + 1]] = decoded[-1] / 2**f
            bits_y += self._symbol_bits(q, self.scale_index(log2s))
        return StripCost(bits_y, bits_z, (y_hat * self.step).astype(np.float32), bound)

    def cost(self, y: np.ndarray, strip_rows: int = STRIP_ROWS, bounds: bool = False) -> StripCost:
        """Cost of a whole latent grid ``[C, H, W]``, coded in strips of ``strip_rows`` rows."""
        parts = [self.strip(y[:, r:r + strip_rows], bounds) for r in range(0, y.shape[1], strip_rows)]
        return StripCost(sum(p.bits_y for p in parts), sum(p.bits_z for p in parts),
                         np.concatenate([p.y_hat for p in parts], axis=1), max(p.max_bound for p in parts))
