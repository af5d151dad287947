"""The mean-scale hyperprior entropy model with channel-slice context (codec v2, issue 18).

A codec model whose metadata carries ``extra["hyperprior"]`` (one JSON object, in the encoder and
the decoder) codes its latents ``y`` with this model instead of a factorised table
(:class:`engine.codec.entropy.EntropyModelTable`). Everything that chooses a probability model is
an integer-exact :class:`engine.codec.intnet.IntNet`, so encoder and decoder agree on every machine:

* ``u = y / latent_step``; the *analysis* net maps ``u`` (``[C, h, w]``) to side information ``z``
  (``[Cz, ceil(h/4), ceil(w/4)]``), coded as ``z_hat = round(z - median_c)`` with the factorised
  ``z_table`` (escapes as in :mod:`.rangecoding`);
* the *synthesis* net maps the integers ``z_hat`` to fixed-point ``[2C, 4hz, 4wz]`` (cropped to
  ``[2C, h, w]``): channels ``0..C-1`` are the mean ``mu``, ``C..2C-1`` are ``log2(sigma)``;
* latent channels are coded in *slices* ``slices[k] .. slices[k+1] - 1``; for slice ``k >= 1`` the
  *context* net ``k - 1`` refines the slice's (mu, log2 sigma) from the synthesis output of the slice
  and the decoded ``y_hat`` (fixed point) of all earlier slices;
* ``q = round(u - mu)`` (encoder), ``y_hat = q + mu`` exactly (``mu`` is fixed point: ``y_hat``'s
  fixed point is ``(q << F) + mu_fixed``); the decoder network receives ``y_hat * latent_step``;
* ``log2 sigma`` (fixed point ``v``) picks one of ``S`` stored zero-mean pmfs
  (``scale_pmfs``) by integer arithmetic only: ``A = round(log2_min * 2**F)``,
  ``D = round(log2_step * 2**F)`` (Python ``round``, half to even),
  ``i = clip(floor((v - A + D // 2) / D), 0, S - 1)``.

All nets see one *strip* of latent rows at a time (zero padding at strip edges, the whole latent
width); strip coding is in :mod:`.hypercoding`. The shared contract with the training side is
``/work/wt/CODEC_V2_CONTRACT.md`` (see also ``docs/decisions/2026-12-02-codec-hyperprior.md``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelError
from .entropy import EntropyModelTable
from .intnet import IntNet

HYPERPRIOR_KEY = "hyperprior"
"""Model metadata ``extra`` key holding the hyperprior JSON."""
HYPERPRIOR_VERSION = 1
HYPER_DOWNSCALE = 4
MAX_SCALES = 4096
"""Most scale indices a model may have (the coder sorts symbols by a 16-bit index)."""
"""Latent cells per side-information cell along each axis."""


@dataclass(frozen=True)
class ScaleTable:
    """``sigma_i = 2 ** (log2_min + i * log2_step)``, ``i = 0 .. count - 1``."""

    log2_min: float
    log2_step: float
    count: int

    def fixed(self, frac_bits: int) -> tuple[int, int]:
        """``(A, D)``: ``log2_min`` and ``log2_step`` in fixed point with ``frac_bits`` fraction bits."""
        scale = float(2**frac_bits)
        return round(self.log2_min * scale), round(self.log2_step * scale)

    def indices(self, log2_sigma_fixed: np.ndarray, frac_bits: int) -> np.ndarray:
        """Scale index (int64) of each fixed-point ``log2 sigma`` value; integer arithmetic only."""
        a, d = self.fixed(frac_bits)
        v = np.asarray(log2_sigma_fixed, dtype=np.int64)
        return np.clip((v - a + d // 2) // d, 0, self.count - 1)

    def sigmas(self) -> np.ndarray:
        return 2.0 ** (self.log2_min + self.log2_step * np.arange(self.count))


def _mismatch(source: str, what: str) -> ModelError:
    return ModelError(f"{source}: hyperprior and prior do not match ({what}); re-export the model "
                      "with 'python -m training.compression hyper'.")


def _output_size(net: IntNet, n: int) -> int:
    """Rows (or columns) out of ``net`` for ``n`` in: nearest upsampling, then ``ceil(n / stride)``."""
    for layer in net.layers:
        n = math.ceil(n * layer.upsample / layer.stride)
    return n


def _resizes_as(net: IntNet, size: Any) -> bool:
    """Whether ``net`` maps every size ``n`` in 1..16 to ``size(n)``."""
    return all(_output_size(net, n) == size(n) for n in range(1, 17))


@dataclass(frozen=True, eq=False)
class HyperpriorModel:
    """The parsed and validated ``extra["hyperprior"]`` of a codec model; see the module docstring.

    Two models are the same model when their :meth:`sha256` agree (instances compare by identity)."""

    latent_step: float
    analysis: IntNet
    z_table: EntropyModelTable
    synthesis: IntNet
    slices: tuple[int, ...]
    context: tuple[IntNet, ...]
    scale_table: ScaleTable
    scale_pmfs: EntropyModelTable
    """One "channel" per scale index: the stored zero-mean pmf of ``sigma_i`` and its offset."""
    source: str = field(default="The codec model", compare=False)

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise _mismatch(self.source, "; ".join(problems))

    def _problems(self) -> list[str]:
        step, slices = self.latent_step, self.slices
        if not (math.isfinite(step) and step > 0):
            return [f"latent_step must be a finite number > 0, got {step}"]
        if len(slices) < 2 or slices[0] != 0 or any(b <= a for a, b in itertools.pairwise(slices)):
            return [f"slices must rise strictly from 0 to the latent channels, got {list(slices)}"]
        c = self.channels
        problems = self._net_problems(c)
        if len(self.context) != len(slices) - 2:
            problems.append(f"{len(slices) - 1} slices need {len(slices) - 2} context nets, "
                            f"got {len(self.context)}")
        else:
            problems += self._context_problems(c)
        s = self.scale_table
        finite = math.isfinite(s.log2_min) and math.isfinite(s.log2_step)
        if not (1 <= s.count <= MAX_SCALES and finite and s.log2_step > 0):
            problems.append(f"scale_table needs 1 <= count <= {MAX_SCALES} and a finite log2_step > 0, "
                            f"got {s}")
        elif s.fixed(self.frac_bits)[1] < 1:
            problems.append(f"scale_table log2_step {s.log2_step} is below one fixed-point step "
                            f"(2**-{self.frac_bits})")
        if self.scale_pmfs.channels != s.count:
            problems.append(f"scale_table has {s.count} scales but scale_pmfs holds "
                            f"{self.scale_pmfs.channels} pmfs")
        return problems

    def _net_problems(self, c: int) -> list[str]:
        problems = []
        cz = self.z_table.channels
        if self.analysis.in_channels != c:
            problems.append(f"analysis takes {self.analysis.in_channels} channels, the latents have {c}")
        if self.analysis.out_channels != cz:
            problems.append(f"analysis gives {self.analysis.out_channels} channels but z_table has {cz}")
        if not _resizes_as(self.analysis, lambda n: math.ceil(n / HYPER_DOWNSCALE)):
            problems.append("analysis must reduce rows and columns n to ceil(n / 4)")
        if self.synthesis.in_channels != cz:
            problems.append(f"synthesis takes {self.synthesis.in_channels} channels but z_table has {cz}")
        if self.synthesis.out_channels != 2 * c:
            problems.append(f"synthesis gives {self.synthesis.out_channels} channels, "
                            f"2 x {c} latent channels expected (mu, log2 sigma)")
        if not _resizes_as(self.synthesis, lambda n: HYPER_DOWNSCALE * n):
            problems.append("synthesis must enlarge rows and columns n to 4 n")
        return problems

    def _context_problems(self, c: int) -> list[str]:
        problems = []
        for k, net in enumerate(self.context, start=1):
            n_k, before = self.slices[k + 1] - self.slices[k], self.slices[k]
            if net.in_channels != 2 * n_k + before or net.out_channels != 2 * n_k:
                problems.append(
                    f"context net of slice {k} maps {net.in_channels} -> {net.out_channels} channels, "
                    f"expected {2 * n_k + before} -> {2 * n_k} (slice of {n_k} channels after {before})")
            if not _resizes_as(net, lambda n: n):
                problems.append(f"context net of slice {k} must keep the latent grid's size")
            if net.frac_bits != self.synthesis.frac_bits:
                problems.append(f"context net of slice {k} has {net.frac_bits} fraction bits, synthesis "
                                f"{self.synthesis.frac_bits}")
        return problems

    # ------------------------------------------------------------ properties
    @property
    def channels(self) -> int:
        """Latent channels ``C``."""
        return self.slices[-1]

    @property
    def z_channels(self) -> int:
        return self.z_table.channels

    @property
    def frac_bits(self) -> int:
        """Fraction bits ``F`` of the fixed-point entropy parameters and of ``y_hat``."""
        return self.synthesis.frac_bits

    def slice_bounds(self) -> list[tuple[int, int]]:
        return list(itertools.pairwise(self.slices))

    # ------------------------------------------------------------ parameters
    def side_information(self, u: np.ndarray) -> np.ndarray:
        """Encoder: the coded side information ``z_hat`` (int32 ``[Cz, ceil(h/4), ceil(w/4)]``) of ``u``."""
        net = self.analysis
        z = net.to_real(net.run_fixed(net.to_fixed(u)))
        return self.z_table.quantise(z)

    def synthesised(self, z_hat: np.ndarray, rows: int, width: int) -> np.ndarray:
        """Fixed-point (mu, log2 sigma) of every channel from ``z_hat``: int64 ``[2C, rows, width]``."""
        return self.synthesis.run_integers(z_hat)[:, :rows, :width]

    def slice_parameters(self, k: int, synthesised: np.ndarray, y_hat_fixed: np.ndarray,
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-point ``(mu, log2 sigma)`` of slice ``k`` (each int64 ``[n_k, rows, width]``).

        ``y_hat_fixed``: the strip's decoded latents in fixed point; only slices before ``k`` are read.
        """
        lo, hi = self.slices[k], self.slices[k + 1]
        c = self.channels
        base = np.concatenate([synthesised[lo:hi], synthesised[c + lo : c + hi]])
        if k > 0:
            base = self.context[k - 1].run_fixed(np.concatenate([base, y_hat_fixed[:lo]]))
        n = hi - lo
        return base[:n], base[n:]

    def scale_indices(self, log2_sigma_fixed: np.ndarray) -> np.ndarray:
        return self.scale_table.indices(log2_sigma_fixed, self.frac_bits)

    def dequantise(self, y_hat_fixed: np.ndarray) -> np.ndarray:
        """Fixed-point ``y_hat`` -> the decoder network's input ``y_hat * latent_step`` (float32)."""
        factor = self.latent_step / float(2**self.frac_bits)
        return (np.asarray(y_hat_fixed, dtype=np.float64) * factor).astype(np.float32)

    # --------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        s = self.scale_table
        return {
            "version": HYPERPRIOR_VERSION,
            "latent_step": self.latent_step,
            "analysis": self.analysis.to_dict(),
            "z_table": json.loads(self.z_table.to_json()),
            "synthesis": self.synthesis.to_dict(),
            "slices": list(self.slices),
            "context": [net.to_dict() for net in self.context],
            "scale_table": {"log2_min": s.log2_min, "log2_step": s.log2_step, "count": s.count},
            "scale_pmfs": {"offsets": list(self.scale_pmfs.offsets),
                           "pmfs": [list(p) for p in self.scale_pmfs.pmfs]},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def _sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON (stored in compressed files to detect a model mismatch)."""
        return self._sha256

    @classmethod
    def from_json(cls, text: str, source: str = "The codec model") -> HyperpriorModel:
        """Parse ``extra["hyperprior"]``; :class:`ModelError` saying what is wrong if it is unusable."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{source}: its hyperprior is not valid JSON ({exc}); re-export the model.") \
                from exc
        if not isinstance(data, dict) or data.get("version") != HYPERPRIOR_VERSION:
            found = data.get("version") if isinstance(data, dict) else "?"
            raise ModelError(f"{source}: hyperprior version {found!r} is not readable by this SAR Toolbox "
                             f"(reads {HYPERPRIOR_VERSION}); update the plugin or re-export the model.")
        try:
            return cls._from_dict(data, source)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"{source}: its hyperprior is malformed (missing or invalid {exc}); "
                             "re-export the model.") from exc

    @classmethod
    def _from_dict(cls, data: dict[str, Any], source: str) -> HyperpriorModel:
        z_table = data["z_table"]
        scales = data["scale_table"]
        pmfs = data["scale_pmfs"]
        return cls(
            latent_step=float(data["latent_step"]),
            analysis=IntNet.from_dict(data["analysis"]),
            z_table=EntropyModelTable.from_json(z_table if isinstance(z_table, str) else json.dumps(z_table)),
            synthesis=IntNet.from_dict(data["synthesis"]),
            slices=tuple(int(v) for v in data["slices"]),
            context=tuple(IntNet.from_dict(net) for net in data["context"]),
            scale_table=ScaleTable(float(scales["log2_min"]), float(scales["log2_step"]),
                                   int(scales["count"])),
            scale_pmfs=scale_pmf_table(pmfs["offsets"], pmfs["pmfs"]),
            source=source,
        )


def scale_pmf_table(offsets: Sequence[int], pmfs: Sequence[Sequence[float] | np.ndarray],
                    ) -> EntropyModelTable:
    """The ``S`` stored scale pmfs as a table with one zero-median "channel" per scale index."""
    return EntropyModelTable.from_pmfs(np.zeros(len(pmfs)), offsets, pmfs)
