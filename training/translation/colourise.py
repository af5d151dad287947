"""Colourisation generator: luminance from the SAR itself, colour predicted at low resolution.

A free image-to-image network trained on a few real pairs invents texture that is not in
the scene (see ``docs/decisions/2026-12-07-translation-colourise.md``). This generator cannot:

* **Detail** comes only from the SAR: the normalised dB is smoothed by a fixed Gaussian
  (speckle-robust; ``smooth_sigma`` px) and passed through a learned **tone curve** (a 1 -> k -> 1
  per-pixel network, so it may be non-monotonic: bright vegetation in SAR is dark in optical).
* **Context** is read at ``1 / colour_stride`` resolution from the local mean and standard
  deviation of the dB (the standard deviation separates textured towns from smooth fields and
  water) by a small dilated CNN (receptive field of a few hundred pixels). It predicts, per
  low-resolution cell, the luminance offset and gain applied to the tone-mapped SAR, and two
  chroma components; they are upsampled bilinearly.
* With ``detail_gain_floor`` > 0 the SAR's local contrast is always shown, at least that strongly
  (:meth:`ColouriseGenerator.luminance`): a colourisation of the SAR, not a free synthesis.
* RGB = YCbCr -> RGB (BT.601) of ``offset + gain * tone(smooth(x))`` and the chroma, in the
  network's ``[-1, 1]`` output scale (clamped).

Its input and output are those of :class:`training.translation.models.UNetGenerator`
(normalised SAR in ``[0, 1]``, RGB in ``[-1, 1]``), so the engine and the export are unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from torch import nn

from .models import DETAIL_SCALE, ModelConfig

YCBCR_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))
"""BT.601 (Y, Cb, Cr) -> (R, G, B), with Cb and Cr centred on 0."""
MEAN_LUMINANCE = 0.35
"""Initial luminance offset (display scale): about the mean luminance of the optical training images."""


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised ``(1, 1, k, k)`` Gaussian kernel, ``k = 2 ceil(3 sigma) + 1``."""
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


class ColouriseGenerator(nn.Module):
    """``(n, 1, h, w)`` normalised SAR in ``[0, 1]`` -> ``(n, 3, h, w)`` RGB in ``[-1, 1]``.

    ``h`` and ``w`` must be multiples of ``cfg.colour_stride``; ``cfg.ngf`` is the context branch's width.
    """

    blur: torch.Tensor
    ycbcr: torch.Tensor

    def __init__(self, cfg: ModelConfig, tone_units: int = 16) -> None:
        super().__init__()
        if cfg.colour_stride < 1 or cfg.ngf < 1 or cfg.smooth_sigma <= 0:
            raise ValueError("--colour-stride and --ngf must be >= 1 and --smooth-sigma > 0.")
        self.cfg = cfg
        self.stride = cfg.colour_stride
        width = cfg.ngf
        self.register_buffer("blur", gaussian_kernel(cfg.smooth_sigma))
        self.blur_radius = int(self.blur.shape[-1]) // 2
        self.tone = nn.Sequential(nn.Conv2d(1, tone_units, 1), nn.Tanh(), nn.Conv2d(tone_units, 1, 1))
        layers: list[nn.Module] = []
        cin = 2
        for dilation in (1, 2, 4, 8, 1):
            layers += [
                nn.Conv2d(cin, width, 3, padding=dilation, dilation=dilation, padding_mode="replicate"),
                nn.LeakyReLU(0.2),
            ]
            cin = width
        self.context = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 4, 1)  # offset, gain, cb, cr
        nn.init.zeros_(self.head.weight)
        self.gain_floor = float(cfg.detail_gain_floor)
        start_gain = 0.1 if self.gain_floor <= 0 else math.log(math.expm1(0.1))  # softplus^-1(0.1)
        self.head.bias = nn.Parameter(torch.tensor([MEAN_LUMINANCE, start_gain, 0.0, 0.0]))
        self.register_buffer("ycbcr", torch.tensor(YCBCR_TO_RGB, dtype=torch.float32))

    def smooth(self, x: torch.Tensor) -> torch.Tensor:
        """Speckle-robust detail: the Gaussian-smoothed input (reflected borders)."""
        r = self.blur_radius
        return nnf.conv2d(nnf.pad(x, (r, r, r, r), mode="reflect"), self.blur)

    def low_resolution_fields(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 4, h, w)``: luminance offset and gain, Cb and Cr, predicted at 1/stride and upsampled."""
        mean = nnf.avg_pool2d(x, self.stride)
        std = torch.sqrt(torch.clamp(nnf.avg_pool2d(x * x, self.stride) - mean * mean, min=0.0) + 1e-6)
        fields = self.head(self.context(torch.cat([mean, std], dim=1)))
        return nnf.interpolate(fields, scale_factor=float(self.stride), mode="bilinear", align_corners=False)

    def luminance(self, x: torch.Tensor, fields: torch.Tensor) -> torch.Tensor:
        """Display luminance: the low-resolution offset plus the gain times the SAR detail.

        Without a gain floor the detail is the learned tone curve of the smoothed SAR and the gain is
        free (the network may fade the SAR out where it does not predict the optical image). With
        ``detail_gain_floor`` g > 0 the detail is the smoothed SAR minus its mean over cells of
        ``DETAIL_SCALE`` x the colour stride (local contrast up to field size, in units of the normalised
        input x 2) and the gain is at least g: what the SAR
        shows stays visible, with the sign the SAR gives it.
        """
        offset, raw_gain = fields[:, 0:1], fields[:, 1:2]
        smooth = self.smooth(x)
        if self.gain_floor <= 0:
            return offset + raw_gain * self.tone(smooth * 2.0 - 1.0)
        coarse = self.stride * DETAIL_SCALE
        local_mean = nnf.interpolate(
            nnf.avg_pool2d(smooth, coarse), scale_factor=float(coarse), mode="bilinear", align_corners=False
        )
        return offset + (self.gain_floor + nnf.softplus(raw_gain)) * (smooth - local_mean) * 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fields = self.low_resolution_fields(x)
        luminance = self.luminance(x, fields)
        ycc = torch.cat([luminance, fields[:, 2:4]], dim=1)
        rgb = nnf.conv2d(ycc, self.ycbcr[:, :, None, None])
        return torch.clamp(rgb * 2.0 - 1.0, -1.0, 1.0)
