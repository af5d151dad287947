"""Losses of the keypoint network (R2D2-style, written from the published formulation).

* repeatability: 1 - cosine similarity of local ``patch x patch`` windows of view B's
  repeatability map and view A's map warped into B (valid pixels only), plus a
  peakiness term ``1 - mean(local max - local mean)`` on both maps;
* descriptors: for query pixels of B, InfoNCE (softmax cross-entropy at ``temperature``)
  of the true A position among A candidates (a dense grid of A plus the other queries'
  positives; candidates within ``ignore_radius`` px of the true position are ignored,
  everything farther is a negative: the nearby ones are the hard negatives);
* reliability: the query's matchability, measured as the differentiable (histogram-binned)
  average precision of its true match among the same candidates, is the target of a binary
  cross-entropy on ``R`` (the AP is not back-propagated through this term): ``R`` predicts
  how well a pixel's descriptor will match.

Tried first: R2D2's reliability-weighted AP loss ``1 - (AP * R + kappa * (1 - R))`` alone; on
this CPU budget the AP stayed at chance (~0.002 after 160 steps) while ``R`` collapsed,
because the AP's gradient is weak while all candidates share a few quantisation bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from ..config import ConfigDict, documented


@dataclass(frozen=True)
class LossConfig(ConfigDict):
    patch: int = documented(16, "repeatability window (px)")
    w_cosim: float = 1.0
    w_peaky: float = 0.5
    w_desc: float = 1.0
    w_rel: float = 1.0
    temperature: float = documented(0.1, "InfoNCE temperature")
    query_stride: int = 8
    candidate_stride: int = 4
    ignore_radius: float = 3.0
    bins: int = 16


def to_grid(xy: torch.Tensor, size_a: tuple[int, int]) -> torch.Tensor:
    """Index coordinates ``(N, 2, H, W)`` (x, y) -> ``grid_sample`` grid ``(N, H, W, 2)`` (align_corners)."""
    h, w = size_a
    gx = 2.0 * xy[:, 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * xy[:, 1] / max(h - 1, 1) - 1.0
    return torch.stack([gx, gy], dim=-1)


def repeatability_loss(
    rep_a: torch.Tensor, rep_b: torch.Tensor, xy_in_a: torch.Tensor, patch: int
) -> torch.Tensor:
    """1 - mean cosine similarity of local windows of ``rep_b`` and ``rep_a`` warped into B."""
    valid = torch.isfinite(xy_in_a[:, :1])
    grid = to_grid(torch.nan_to_num(xy_in_a, nan=-10.0), (rep_a.shape[-2], rep_a.shape[-1]))
    warped = F.grid_sample(rep_a, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    m = valid.float()
    a, b = warped * m, rep_b * m
    stride = patch // 2
    ab = F.avg_pool2d(a * b, patch, stride)
    aa = F.avg_pool2d(a * a, patch, stride)
    bb = F.avg_pool2d(b * b, patch, stride)
    cover = F.avg_pool2d(m, patch, stride)
    cos = ab / torch.sqrt(aa * bb + 1e-12)
    weight = (cover > 0.5).float()
    return 1.0 - (cos * weight).sum() / weight.sum().clamp_min(1.0)


def peakiness_loss(rep: torch.Tensor, patch: int) -> torch.Tensor:
    """1 - mean(local max - local mean) over ``(patch + 1)`` windows."""
    k = patch + 1
    local_max = F.max_pool2d(rep, k, stride=1, padding=patch // 2)
    local_mean = F.avg_pool2d(rep, k, stride=1, padding=patch // 2, count_include_pad=False)
    return 1.0 - (local_max - local_mean).mean()


def binned_average_precision(scores: torch.Tensor, labels: torch.Tensor, bins: int) -> torch.Tensor:
    """Differentiable AP per row: ``scores`` ``(Q, M)`` in [-1, 1], ``labels`` 1 pos / 0 neg / -1 ignored.

    Each score is split linearly between its two nearest of ``bins`` equally spaced levels
    (triangular kernels); precision is accumulated from the highest level down.
    """
    levels = torch.linspace(1.0, -1.0, bins, device=scores.device)
    step = 2.0 / (bins - 1)
    q = (1.0 - (scores[..., None] - levels).abs() / step).clamp_min(0.0)  # (Q, M, bins)
    keep = (labels >= 0).float()[..., None]
    pos = (labels == 1).float()[..., None]
    rec = (q * pos).sum(dim=1)  # (Q, bins)
    nbs = (q * keep).sum(dim=1)
    precision = rec.cumsum(-1) / (nbs.cumsum(-1) + 1e-8)
    return (precision * rec).sum(-1) / rec.sum(-1).clamp_min(1e-8)


def _candidates(
    feat_a: torch.Tensor, grid_pos: torch.Tensor, stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of A on a regular grid plus at the positives: ``(C, M)`` and their xy ``(M, 2)``."""
    h, w = feat_a.shape[-2:]
    off = stride // 2
    ys, xs = torch.meshgrid(
        torch.arange(off, h, stride, device=feat_a.device, dtype=feat_a.dtype),
        torch.arange(off, w, stride, device=feat_a.device, dtype=feat_a.dtype),
        indexing="ij",
    )
    dense = feat_a[:, off::stride, off::stride].reshape(feat_a.shape[0], -1)
    xy = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    return torch.cat([dense, grid_pos], dim=1), xy


def descriptor_loss(
    describe: Any, feat_a: torch.Tensor, feat_b: torch.Tensor, xy_in_a: torch.Tensor, cfg: LossConfig,
    offset: tuple[int, int] = (0, 0),
) -> tuple[torch.Tensor, dict[str, float]]:
    """InfoNCE of B's query pixels against A plus the reliability term (``describe``: feat -> desc, rel)."""
    n, _, h, w = feat_b.shape
    s = cfg.query_stride
    oy, ox = offset
    losses, aps, rels = [], [], []
    for i in range(n):
        xy = xy_in_a[i, :, oy::s, ox::s].reshape(2, -1)  # true A positions of the query pixels
        qy, qx = torch.meshgrid(
            torch.arange(oy, h, s, device=feat_b.device), torch.arange(ox, w, s, device=feat_b.device),
            indexing="ij",
        )
        ok = torch.isfinite(xy[0])
        if int(ok.sum()) < 8:
            continue
        xy = xy[:, ok]
        fq = feat_b[i, :, qy.reshape(-1)[ok], qx.reshape(-1)[ok]]  # (C, Q)
        grid = to_grid(xy.T[None, None].permute(0, 3, 1, 2), (feat_a.shape[-2], feat_a.shape[-1]))
        fpos = F.grid_sample(feat_a[i : i + 1], grid, mode="bilinear", align_corners=True)[0, :, 0]
        cand, dense_xy = _candidates(feat_a[i], fpos, cfg.candidate_stride)
        dq, rq = describe(fq[None, :, None])  # the heads are 1x1 convolutions: (1, C, 1, Q)
        dc, _ = describe(cand[None, :, None])
        scores = dq[0, :, 0].T @ dc[0, :, 0]  # (Q, M)
        cand_xy = torch.cat([dense_xy, xy.T], dim=0)  # (M, 2)
        labels = torch.where(torch.cdist(xy.T, cand_xy) <= cfg.ignore_radius, -1, 0)
        q = xy.shape[1]
        idx = torch.arange(q, device=labels.device)
        positive = dense_xy.shape[0] + idx
        labels[idx, positive] = 1
        logits = (scores / cfg.temperature).masked_fill(labels < 0, float("-inf"))
        nce = F.cross_entropy(logits, positive, reduction="none")
        ap = binned_average_precision(scores.detach(), labels, cfg.bins)
        r = rq[0, 0, 0]
        rel = F.binary_cross_entropy(r, ap)
        losses.append(cfg.w_desc * nce.mean() + cfg.w_rel * rel)
        aps.append(ap)
        rels.append(r.detach())
    if not losses:
        zero = feat_b.sum() * 0.0
        return zero, {"ap": 0.0, "reliability": 0.0}
    loss = torch.stack(losses).mean()
    return loss, {"ap": float(torch.cat(aps).mean()), "reliability": float(torch.cat(rels).mean())}
