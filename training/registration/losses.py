"""Losses of the registration encoder (phase 1) and the shift regressor (phase 2).

* :func:`contrastive_loss` - the design's loss: per-location cosine similarity of the
  two embedding maps, weighted by the (downsampled) Gaussian mask,
  ``L = y (1 - sim)^2 + (1 - y) ReLU(sim - m)^2``; ``y = 1`` for co-registered crops,
  ``0`` for shifted ones.
* :func:`shift_nce_loss` - an auxiliary term that trains exactly what the engine
  does at inference: correlate a central template of one map against the other map
  over every shift in ``+-radius`` and ask the true shift (zero) to win a softmax.
* :func:`ncc_shift_loss` - the same idea with the engine's exact score, for encoders
  whose embeddings are not normalised per pixel (``guided``): the normalised
  cross-correlation of the whole feature volume (:mod:`engine.registration.correlation`),
  with the template's features computed on the template window alone, as the engine does.
  With known sub-pixel shifts the target is split bilinearly over the four integer shifts
  around the true one, and :func:`subpixel_loss` scores the engine's parabola refinement.
* :func:`regression_loss` - smooth L1 on ``(dx, dy)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from ..config import ConfigDict, documented


@dataclass(frozen=True)
class LossConfig(ConfigDict):
    margin: float = 0.3
    w_contrastive: float = 1.0
    w_nce: float = documented(0.5, "weight of the shift-softmax term (0: off)")
    nce_radius: int = 8
    temperature: float = 0.05
    w_subpixel: float = documented(
        0.0, "guided: weight of the sub-pixel term (parabola peak vs the true shift; needs --subpixel)"
    )
    match_sigma: float = documented(
        0.0, "guided: smooth the embedding by this Gaussian (px) before the search, as the engine will"
    )


def cosine_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-location cosine similarity ``(N, h, w)`` of two ``(N, D, h, w)`` maps."""
    return F.cosine_similarity(a, b, dim=1, eps=1e-6)


def contrastive_loss(
    a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, margin: float
) -> torch.Tensor:
    """Mask-weighted per-location contrastive loss (mean over the batch).

    Args:
        a, b: ``(N, D, h, w)`` embeddings.
        y: ``(N,)`` 1 for matching crops, 0 for shifted (non-matching) crops.
        mask: ``(N, h, w)`` non-negative weights (Gaussian peaked at the correspondence).
        margin: similarity above which negatives are penalised.
    """
    sim = cosine_map(a, b)
    yy = y.to(sim.dtype).view(-1, 1, 1)
    per_loc = yy * (1.0 - sim) ** 2 + (1.0 - yy) * F.relu(sim - margin) ** 2
    w = mask.to(sim.dtype)
    per_sample = (per_loc * w).sum(dim=(1, 2)) / w.sum(dim=(1, 2)).clamp_min(1e-6)
    return per_sample.mean()


def correlation_scores(template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity of a ``(N, D, t, t)`` template at every shift in ``(N, D, t+2r, t+2r)``.

    Returns ``(N, 2r+1, 2r+1)``.
    """
    n, d, th, tw = template.shape
    out = F.conv2d(search.reshape(1, n * d, *search.shape[-2:]), template, groups=n)
    return out.reshape(n, out.shape[-2], out.shape[-1]) / float(th * tw)


def zero_shift_cross_entropy(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of the centre (zero shift) of ``(N, 2r+1, 2r+1)`` scores, softmax at ``temperature``."""
    n, side = scores.shape[0], scores.shape[-1]
    centre = (side // 2) * side + side // 2
    target = torch.full((n,), centre, dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores.flatten(1) / temperature, target)


def bilinear_shift_target(shifts: torch.Tensor, side: int) -> torch.Tensor:
    """Soft labels ``(N, side, side)``: each ``(dx, dy)`` of ``shifts`` ``(N, 2)`` split bilinearly
    over its four neighbouring integer shifts (index ``side // 2`` is zero shift)."""
    r = side // 2
    if bool((shifts.abs() > r - 1).any()):
        raise ValueError(f"shifts must stay within +-{r - 1} px for a {side} x {side} score grid.")
    grid = torch.arange(side, dtype=shifts.dtype, device=shifts.device) - r
    wx = (1.0 - (grid[None, :] - shifts[:, :1]).abs()).clamp_min(0.0)  # (N, side) over columns
    wy = (1.0 - (grid[None, :] - shifts[:, 1:]).abs()).clamp_min(0.0)  # (N, side) over rows
    return wy[:, :, None] * wx[:, None, :]


def shift_cross_entropy(
    scores: torch.Tensor, temperature: float, shifts: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy of the true shift (zero, or sub-pixel ``shifts`` ``(N, 2)`` as bilinear soft labels)."""
    if shifts is None:
        return zero_shift_cross_entropy(scores, temperature)
    target = bilinear_shift_target(shifts, scores.shape[-1])
    return F.cross_entropy(scores.flatten(1) / temperature, target.flatten(1))


def parabola_offsets(scores: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Sub-pixel peak ``(N, 2)`` (dx, dy) by a parabola through the scores around the integer shift
    nearest to each true shift, as the engine's last refinement step does (offsets clamped to +-1 px)."""
    r = scores.shape[-1] // 2
    n = torch.arange(scores.shape[0], device=scores.device)
    ix = (shifts[:, 0].round().long() + r).clamp(1, 2 * r - 1)
    iy = (shifts[:, 1].round().long() + r).clamp(1, 2 * r - 1)

    def vertex(vm: torch.Tensor, v0: torch.Tensor, vp: torch.Tensor) -> torch.Tensor:
        curvature = (vm - 2 * v0 + vp).clamp_max(-1e-6)  # a maximum needs negative curvature
        return (0.5 * (vm - vp) / curvature).clamp(-1.0, 1.0)

    v0 = scores[n, iy, ix]
    fx = vertex(scores[n, iy, ix - 1], v0, scores[n, iy, ix + 1])
    fy = vertex(scores[n, iy - 1, ix], v0, scores[n, iy + 1, ix])
    return torch.stack([ix - r + fx, iy - r + fy], dim=1)


def subpixel_loss(scores: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance (px) between the parabola peak of ``scores`` and the true ``shifts``."""
    return (parabola_offsets(scores, shifts) - shifts).abs().sum(dim=1).mean()


def shift_nce_loss(a: torch.Tensor, b: torch.Tensor, radius: int, temperature: float) -> torch.Tensor:
    """Cross-entropy of the zero shift among all shifts within ``+-radius`` (co-registered pairs only).

    ``a`` gives the central template (its border of ``radius`` cut off), ``b`` the search map;
    the loss is averaged over both directions (a in b and b in a).
    """
    h, w = a.shape[-2:]
    if h <= 2 * radius + 1 or w <= 2 * radius + 1:
        raise ValueError(f"maps of {h}x{w} are too small for an NCE radius of {radius}.")
    losses = []
    for t_map, s_map in ((a, b), (b, a)):
        template = t_map[:, :, radius : h - radius, radius : w - radius]
        losses.append(zero_shift_cross_entropy(correlation_scores(template, s_map), temperature))
    return 0.5 * (losses[0] + losses[1])


def smooth_embedding(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The engine's ``match_sigma`` smoothing of ``(N, C, H, W)`` maps: scipy's ``gaussian_filter``
    (4-sigma support, ``mode="nearest"``) on every channel; ``sigma <= 0`` returns ``x``."""
    if sigma <= 0:
        return x
    from .models import gauss_taps, separable_filter

    taps = gauss_taps(sigma, int(4 * sigma + 0.5)).to(x)
    c = x.shape[1]
    kx, ky = taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    return separable_filter(x, kx, ky)


def ncc_scores(template: torch.Tensor, search: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Volume NCC of a ``(N, D, t, t)`` template at every shift in ``(N, D, t + 2r, t + 2r)``.

    The score of :func:`engine.registration.correlation.search_shift`: template zero-mean per channel,
    normalised by its norm and by the norm of the (zero-mean) search window. Returns ``(N, 2r+1, 2r+1)``.
    """
    n, _, th, tw = template.shape
    t = template - template.mean(dim=(2, 3), keepdim=True)
    t_norm = torch.sqrt((t**2).sum(dim=(1, 2, 3)) + eps)
    sh, sw = search.shape[-2:]
    # correlation by FFT (a 64 x 64 kernel is slow as a convolution on CPU); lags 0..2r never wrap
    spectrum = torch.fft.rfft2(search, s=(sh, sw)) * torch.conj(torch.fft.rfft2(t, s=(sh, sw)))
    num = torch.fft.irfft2(spectrum.sum(dim=1), s=(sh, sw))[:, : sh - th + 1, : sw - tw + 1]
    count = float(th * tw)
    s1 = F.avg_pool2d(search, (th, tw), stride=1) * count
    s2 = F.avg_pool2d((search**2).sum(dim=1, keepdim=True), (th, tw), stride=1)[:, 0] * count
    var = (s2 - (s1**2).sum(dim=1) / count).clamp_min(0.0)
    return num / (torch.sqrt(var + eps) * t_norm.view(n, 1, 1))


def ncc_shift_loss(
    templates: torch.Tensor,
    searches: torch.Tensor,
    radius: int,
    temperature: float,
    shifts: torch.Tensor | None = None,
    w_subpixel: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the true shift among all shifts within ``+-radius`` of the volume NCC.

    ``templates`` ``(N, D, t, t)``: the features of the central windows, computed on those windows;
    ``searches`` ``(N, D, t + 2 radius, t + 2 radius)``: the features of the other image's whole crops;
    ``shifts`` ``(N, 2)``: true ``(dx, dy)`` of each template in its search map (None: zero);
    ``w_subpixel`` > 0 adds :func:`subpixel_loss` (needs ``shifts``). Returns the loss and its parts.
    """
    if searches.shape[-1] - templates.shape[-1] != 2 * radius:
        raise ValueError(
            f"search maps {tuple(searches.shape)} do not fit templates {tuple(templates.shape)} "
            f"with radius {radius}."
        )
    scores = ncc_scores(templates, searches)
    loss = shift_cross_entropy(scores, temperature, shifts)
    parts = {"ncc_nce": float(loss.detach())}
    if w_subpixel > 0 and shifts is not None:
        sub = subpixel_loss(scores, shifts)
        loss = loss + w_subpixel * sub
        parts["subpixel_px"] = float(sub.detach())
    parts["total"] = float(loss.detach())
    return loss, parts


def phase1_loss(
    a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, cfg: LossConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the contrastive and (on positives) shift-NCE terms, with their values."""
    con = contrastive_loss(a, b, y, mask, cfg.margin)
    total = cfg.w_contrastive * con
    parts = {"contrastive": float(con.detach())}
    pos = y > 0.5
    if cfg.w_nce > 0 and bool(pos.any()):
        nce = shift_nce_loss(a[pos], b[pos], cfg.nce_radius, cfg.temperature)
        total = total + cfg.w_nce * nce
        parts["nce"] = float(nce.detach())
    parts["total"] = float(total.detach())
    return total, parts


def regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smooth L1 between predicted and true ``(dx, dy)`` (pixels)."""
    return F.smooth_l1_loss(pred, target)
