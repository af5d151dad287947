"""Pix2pix losses: conditional GAN (logits, binary cross-entropy) + lambda L1 + optional SSIM,
mean-colour and structure (z-scored luminance SSIM) terms."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as nnf

from ..config import ConfigDict, documented
from .metrics import LUMA


@dataclass(frozen=True)
class LossConfig(ConfigDict):
    l1_weight: float = 100.0
    ssim_weight: float = documented(0.0, "weight of 1 - SSIM (0: off)")  # on the display RGB
    # 0: L1 (+ SSIM, colour) only; the discriminator is then not trained
    gan_weight: float = documented(1.0, "0: L1 only, no discriminator")
    colour_weight: float = documented(0.0, "weight of the L1 between per-image mean colours (0: off)")
    structure_weight: float = documented(
        0.0, "weight of 1 - SSIM of the per-image z-scored luminances (the benchmark's structure score)"
    )


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return nnf.binary_cross_entropy_with_logits(logits, target)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Half the sum of the real and fake BCE terms (pix2pix slows D down by 2)."""
    return 0.5 * (_bce(real_logits, True) + _bce(fake_logits, False))


def mean_colour_l1(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the per-image mean colours ``(n, 3)`` of two ``(n, 3, h, w)`` batches."""
    return nnf.l1_loss(fake.mean(dim=(2, 3)), target.mean(dim=(2, 3)))


def zscored_luminance(rgb: torch.Tensor) -> torch.Tensor:
    """``(n, 3, h, w)`` -> ``(n, 1, h, w)`` luminance standardised per image (zero mean, unit variance)."""
    weights = torch.as_tensor(LUMA, dtype=rgb.dtype, device=rgb.device).reshape(1, 3, 1, 1)
    lum = (rgb * weights).sum(dim=1, keepdim=True)
    mean = lum.mean(dim=(2, 3), keepdim=True)
    std = lum.std(dim=(2, 3), keepdim=True, unbiased=False)
    return (lum - mean) / (std + 1e-4)


def structure_loss(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - SSIM of the z-scored luminances (data range: the target's span), the
    differentiable form of :func:`training.translation.metrics.structure_score`."""
    from pytorch_msssim import ssim

    zf, zt = zscored_luminance(fake), zscored_luminance(target)
    losses = []
    for f, t in zip(zf, zt, strict=True):
        span = float((t.max() - t.min()).detach()) or 1.0
        losses.append(1.0 - ssim(f[None], t[None], data_range=span, size_average=True))
    return torch.stack(losses).mean()


def generator_loss(
    fake_logits: torch.Tensor | None, fake: torch.Tensor, target: torch.Tensor, cfg: LossConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """GAN + ``l1_weight`` x L1 (+ ``ssim_weight`` x (1 - SSIM) + ``colour_weight`` x mean-colour L1);
    images in ``[-1, 1]``. ``fake_logits`` may be None when ``gan_weight`` is 0."""
    l1 = nnf.l1_loss(fake, target)
    total = cfg.l1_weight * l1
    parts = {"g_l1": float(l1.detach())}
    if cfg.gan_weight > 0:
        if fake_logits is None:
            raise ValueError("gan_weight > 0 needs the discriminator's logits of the translation.")
        gan = _bce(fake_logits, True)
        total = total + cfg.gan_weight * gan
        parts["g_gan"] = float(gan.detach())
    if cfg.ssim_weight > 0:
        from pytorch_msssim import ssim

        s = ssim((fake + 1) / 2, (target + 1) / 2, data_range=1.0, size_average=True)
        total = total + cfg.ssim_weight * (1 - s)
        parts["g_ssim"] = float(s.detach())
    if cfg.colour_weight > 0:
        colour = mean_colour_l1(fake, target)
        total = total + cfg.colour_weight * colour
        parts["g_colour"] = float(colour.detach())
    if cfg.structure_weight > 0:
        structure = structure_loss(fake, target)
        total = total + cfg.structure_weight * structure
        parts["g_structure"] = float(1.0 - structure.detach())
    parts["g_total"] = float(total.detach())
    return total, parts
