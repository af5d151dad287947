"""Keypoint losses: binned AP, repeatability cosine similarity, peakiness, the descriptor AP loss."""

from __future__ import annotations

import numpy as np
import torch

from training.keypoints.losses import (
    LossConfig,
    binned_average_precision,
    descriptor_loss,
    peakiness_loss,
    repeatability_loss,
)


def test_binned_ap_ranks_the_positive() -> None:
    labels = torch.tensor([[1, 0, 0, 0, -1]])
    best = binned_average_precision(torch.tensor([[0.9, 0.1, -0.2, -0.5, 1.0]]), labels, 25)
    worst = binned_average_precision(torch.tensor([[-0.9, 0.1, 0.2, 0.5, 1.0]]), labels, 25)
    assert float(best) > 0.99  # the ignored candidate above it does not count
    assert float(worst) < 0.3


def _identity_xy(n: int, h: int, w: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    return torch.stack([xx, yy])[None].repeat(n, 1, 1, 1)


def test_repeatability_loss_is_zero_for_matching_maps_and_positive_otherwise() -> None:
    g = torch.Generator().manual_seed(0)
    rep = torch.rand(2, 1, 32, 32, generator=g)
    xy = _identity_xy(2, 32, 32)
    assert float(repeatability_loss(rep, rep, xy, 8)) < 1e-5
    other = torch.rand(2, 1, 32, 32, generator=g)
    assert float(repeatability_loss(rep, other, xy, 8)) > 0.05
    xy[:, :, :16] = float("nan")  # invalid half: only the valid windows count
    half = rep.clone()
    half[:, :, :16] = other[:, :, :16]
    assert float(repeatability_loss(rep, half, xy, 8)) < 1e-5


def test_peakiness_prefers_peaks() -> None:
    flat = torch.full((1, 1, 32, 32), 0.5)
    peaks = torch.zeros(1, 1, 32, 32)
    peaks[:, :, ::8, ::8] = 1.0
    assert float(peakiness_loss(peaks, 8)) < float(peakiness_loss(flat, 8))


def test_descriptor_loss_rewards_distinct_matching_descriptors() -> None:
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(1, 16, 32, 32, generator=g)
    xy = _identity_xy(1, 32, 32)

    def describe(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.nn.functional.normalize(f, dim=1), torch.ones_like(f[:, :1])

    cfg = LossConfig(query_stride=4, candidate_stride=2)
    good, parts = descriptor_loss(describe, feat, feat, xy, cfg)
    bad, _ = descriptor_loss(describe, feat, torch.randn(1, 16, 32, 32, generator=g), xy, cfg)
    assert parts["ap"] > 0.9 and float(good) < 0.3 * float(bad)
    # nothing valid: a zero loss that still backpropagates
    feat.requires_grad_(True)
    none, _ = descriptor_loss(describe, feat, feat, torch.full_like(xy, np.nan), cfg)
    none.backward()
    assert float(none.detach()) == 0.0
