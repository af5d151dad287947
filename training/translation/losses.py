"""Pix2pix losses: conditional GAN (logits, binary cross-entropy) + lambda L1 + optional SSIM term."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as nnf

from ..config import ConfigDict


@dataclass(frozen=True)
class LossConfig(ConfigDict):
    l1_weight: float = 100.0
    ssim_weight: float = 0.0  # weight of (1 - SSIM) on the display RGB (0: off)
    gan_weight: float = 1.0


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return nnf.binary_cross_entropy_with_logits(logits, target)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Half the sum of the real and fake BCE terms (pix2pix slows D down by 2)."""
    return 0.5 * (_bce(real_logits, True) + _bce(fake_logits, False))


def generator_loss(
    fake_logits: torch.Tensor, fake: torch.Tensor, target: torch.Tensor, cfg: LossConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """GAN + ``l1_weight`` x L1 (+ ``ssim_weight`` x (1 - SSIM)); images in ``[-1, 1]``."""
    gan = _bce(fake_logits, True)
    l1 = nnf.l1_loss(fake, target)
    total = cfg.gan_weight * gan + cfg.l1_weight * l1
    parts = {"g_gan": float(gan.detach()), "g_l1": float(l1.detach())}
    if cfg.ssim_weight > 0:
        from pytorch_msssim import ssim

        s = ssim((fake + 1) / 2, (target + 1) / 2, data_range=1.0, size_average=True)
        total = total + cfg.ssim_weight * (1 - s)
        parts["g_ssim"] = float(s.detach())
    parts["g_total"] = float(total.detach())
    return total, parts
