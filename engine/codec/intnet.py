"""Integer-exact convolutional networks for entropy parameters (identical on every machine).

A range decoder only stays in step with its encoder if both derive *bit-identical* probability
models. The scale and mean of each latent's conditional distribution therefore cannot come from a
float network run by ONNX Runtime: thread count, graph optimisation level, CPU instruction set or
execution provider may change the last bit of a float result and, at a table boundary, the chosen
model. :class:`IntNet` evaluates the hyperprior's small networks in fixed-point integer arithmetic
instead, with one exact definition:

* activations are integers with ``frac_bits`` (``F``) fractional bits: a real value ``v`` is held as
  ``round(v * 2**F)``; an integer input such as a quantised hyper-latent ``z`` enters as ``z << F``;
* each layer's weights are integers with ``weight_bits`` (``W``) fractional bits (``round(w * 2**W)``)
  and its bias is held at the product's scale (``round(b * 2**(F + W))``);
* a layer: optional nearest-neighbour upsampling by ``upsample`` (rows and columns repeated), then a
  ``k x k`` convolution with stride ``stride`` and zero padding ``k // 2`` (PyTorch's
  ``Conv2d(k, stride, padding=k // 2)`` output size ``ceil(n / stride)``), plus the bias, then an
  arithmetic shift right by ``W`` (``floor(acc / 2**W)``), then ``max(., 0)`` if ``relu``.

Every partial sum is an integer. The products are summed by a float64 matrix product when the
layer's bound ``max|a| * max|w| * fan_in + max|b|`` is below 2**53 - every partial sum is then an
exactly representable integer, so any summation order (any BLAS, any thread count) gives the same
result - and by an int64 product otherwise; above 2**62 the network is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError

INTNET_VERSION = 1
_EXACT_FLOAT = 2.0**53
_EXACT_INT = 2.0**62


@dataclass(frozen=True)
class IntLayer:
    """One fixed-point layer: ``weight`` int32 ``[out, in, k, k]`` (k odd), ``bias`` int64 ``[out]``."""

    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    upsample: int = 1
    relu: bool = True

    def __post_init__(self) -> None:
        w, b = self.weight, self.bias
        if w.ndim != 4 or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
            raise ModelError(f"IntNet layer weight must be [out, in, k, k] with k odd, got {list(w.shape)}")
        if b.shape != (w.shape[0],):
            raise ModelError(f"IntNet layer bias must hold {w.shape[0]} values, got {list(b.shape)}")
        if self.stride not in (1, 2) or self.upsample not in (1, 2):
            raise ModelError(
                f"IntNet stride and upsample must be 1 or 2, got {self.stride} and {self.upsample}")

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])


def _b64(arr: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str, shape: Sequence[int]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text.encode("ascii")), dtype=dtype)
    if raw.size != int(np.prod(shape)):
        raise ModelError(f"IntNet array holds {raw.size} values, expected shape {list(shape)}")
    return raw.reshape(tuple(shape)).astype(np.int64)


def _patches(a: np.ndarray, k: int, stride: int) -> np.ndarray:
    """``[C, H, W]`` -> ``[H', W', C * k * k]`` zero-padded ``k x k`` windows at the given stride."""
    pad = k // 2
    padded = np.pad(a, ((0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (1, k, k))[:, :, :, 0]
    windows = windows[:, ::stride, ::stride]  # [C, H', W', k, k]
    return windows.transpose(1, 2, 0, 3, 4).reshape(windows.shape[1], windows.shape[2], -1)


def _exact_conv(a: np.ndarray, layer: IntLayer) -> np.ndarray:
    """Integer convolution + bias (int64 ``[out, H', W']``), exact by construction."""
    k = layer.weight.shape[2]
    w = layer.weight.reshape(layer.out_channels, -1)
    bound = (float(np.abs(a).max(initial=0)) * float(np.abs(w).max(initial=0)) * w.shape[1]
             + float(np.abs(layer.bias).max(initial=0)))
    if bound < _EXACT_FLOAT:  # converted before the windows are gathered: one copy fewer
        cols = _patches(a.astype(np.float64), k, layer.stride)
        acc: np.ndarray = (cols @ w.T.astype(np.float64)).astype(np.int64)
    elif bound < _EXACT_INT:
        acc = np.matmul(_patches(a.astype(np.int64), k, layer.stride), w.T.astype(np.int64))
    else:
        raise ModelError(f"IntNet layer could overflow 64-bit integers (bound {bound:.3g}); "
                         "re-export the model with fewer weight or fraction bits")
    return (acc + layer.bias[None, None, :]).transpose(2, 0, 1)


@dataclass(frozen=True)
class IntNet:
    """A chain of :class:`IntLayer` evaluated exactly; see the module docstring."""

    layers: tuple[IntLayer, ...]
    weight_bits: int
    frac_bits: int

    def __post_init__(self) -> None:
        if not self.layers:
            raise ModelError("IntNet has no layers")
        for prev, nxt in zip(self.layers, self.layers[1:], strict=False):
            if nxt.in_channels != prev.out_channels:
                raise ModelError(f"IntNet layers do not chain: {prev.out_channels} channels out, "
                                 f"{nxt.in_channels} in")
        if not (0 <= self.weight_bits <= 24 and 0 <= self.frac_bits <= 24):
            raise ModelError("IntNet weight_bits and frac_bits must be in 0..24")

    @property
    def in_channels(self) -> int:
        return self.layers[0].in_channels

    @property
    def out_channels(self) -> int:
        return self.layers[-1].out_channels

    # --------------------------------------------------------------- evaluation
    def to_fixed(self, x: np.ndarray) -> np.ndarray:
        """Real values -> fixed point (int64, ``F`` fractional bits), rounding half away from zero."""
        scaled = np.asarray(x, dtype=np.float64) * float(2**self.frac_bits)
        return (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)

    def run_fixed(self, a: np.ndarray) -> np.ndarray:
        """Fixed-point input ``[C, H, W]`` (int64) -> fixed-point output ``[C', H', W']`` (int64)."""
        a = np.asarray(a)
        if a.ndim != 3 or a.shape[0] != self.in_channels:
            raise ModelError(f"IntNet expects [{self.in_channels}, H, W] input, got {list(a.shape)}")
        a = a.astype(np.int64)
        for layer in self.layers:
            if layer.upsample > 1:
                a = a.repeat(layer.upsample, axis=1).repeat(layer.upsample, axis=2)
            a = _exact_conv(a, layer) >> self.weight_bits
            if layer.relu:
                a = np.maximum(a, 0)
        return a

    def run_integers(self, z: np.ndarray) -> np.ndarray:
        """Integer input (e.g. quantised hyper-latents) -> fixed-point output."""
        return self.run_fixed(np.asarray(z).astype(np.int64) << self.frac_bits)

    def to_real(self, fixed: np.ndarray) -> np.ndarray:
        """Fixed point -> float64 (exact: a power-of-two division)."""
        return np.asarray(fixed, dtype=np.float64) / float(2**self.frac_bits)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_float(
        cls,
        layers: Sequence[tuple[np.ndarray, np.ndarray, int, int, bool]],
        weight_bits: int,
        frac_bits: int,
    ) -> IntNet:
        """Quantise float layers ``(weight [o,i,k,k], bias [o], stride, upsample, relu)``."""
        scale_w = float(2**weight_bits)
        scale_b = float(2 ** (weight_bits + frac_bits))
        out = []
        for weight, bias, stride, upsample, relu in layers:
            w = np.round(np.asarray(weight, dtype=np.float64) * scale_w)
            if np.abs(w).max(initial=0) >= 2**31:
                raise ModelError("IntNet weights do not fit int32; use fewer weight bits")
            b = np.round(np.asarray(bias, dtype=np.float64) * scale_b).astype(np.int64)
            out.append(IntLayer(w.astype(np.int64), b, int(stride), int(upsample), bool(relu)))
        return cls(tuple(out), int(weight_bits), int(frac_bits))

    # ----------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": INTNET_VERSION,
            "weight_bits": self.weight_bits,
            "frac_bits": self.frac_bits,
            "layers": [
                {"shape": list(layer.weight.shape), "weight": _b64(layer.weight, "<i4"),
                 "bias": _b64(layer.bias, "<i8"), "stride": layer.stride,
                 "upsample": layer.upsample, "relu": layer.relu}
                for layer in self.layers
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntNet:
        if data.get("version") != INTNET_VERSION:
            raise ModelError(f"IntNet version {data.get('version')!r} is not readable by this version of "
                             f"SAR Toolbox (reads {INTNET_VERSION}); update the plugin")
        try:
            layers = tuple(
                IntLayer(
                    _unb64(item["weight"], "<i4", item["shape"]),
                    _unb64(item["bias"], "<i8", [item["shape"][0]]),
                    int(item.get("stride", 1)), int(item.get("upsample", 1)), bool(item.get("relu", True)),
                )
                for item in data["layers"]
            )
            return cls(layers, int(data["weight_bits"]), int(data["frac_bits"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"IntNet description is malformed: {exc}") from exc

    def sha256(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
