"""Rate-distortion loss: ``bpp + lambda * (w_mse * MSE + w_ssim * (1 - SSIM))``.

Distortion is measured on normalised dB tiles (``[0, 1]``), so MSE maps
directly to PSNR with ``peak = db_max - db_min``. The MSE/SSIM weights are
"balanced" so that MSE dominates (PSNR is the headline figure) while the SSIM
term keeps local structure; ``lambda`` chooses the rate point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch_msssim import ssim

from ..config import ConfigDict


@dataclass(frozen=True)
class LossWeights(ConfigDict):
    lmbda: float = 400.0
    w_mse: float = 1.0
    w_ssim: float = 0.02
    ssim_window: int = 11


@dataclass
class LossTerms:
    loss: torch.Tensor
    bpp: torch.Tensor
    mse: torch.Tensor
    ssim: torch.Tensor


def ssim_window_for(size: int, wanted: int) -> int:
    """Largest odd window <= ``wanted`` that fits a ``size`` tile (pytorch_msssim needs it)."""
    win = min(wanted, size if size % 2 else size - 1)
    return max(win, 3)


def rate_distortion(
    x: torch.Tensor, x_hat: torch.Tensor, bpp: torch.Tensor, weights: LossWeights
) -> LossTerms:
    """Combine rate (bits per pixel) and distortion into one scalar loss."""
    mse = torch.mean((x - x_hat) ** 2)
    win = ssim_window_for(min(x.shape[-2:]), weights.ssim_window)
    s = ssim(x_hat, x, data_range=1.0, size_average=True, win_size=win)
    distortion = weights.w_mse * mse + weights.w_ssim * (1.0 - s)
    return LossTerms(loss=bpp + weights.lmbda * distortion, bpp=bpp, mse=mse, ssim=s)
