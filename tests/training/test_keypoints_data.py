"""Keypoint training views: the true B -> A map, homography ranges, preparation as in the engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from training.keypoints.data import (
    OPTICAL,
    SAR,
    DataConfig,
    Scene,
    ViewSampler,
    random_homography,
    synthetic_scenes,
)


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return synthetic_scenes(2, 96, first_seed=3)


def test_views_correspond_through_the_true_map(scenes: list[Scene]) -> None:
    # SAR-SAR without speckle (a huge number of looks): B equals A sampled at B's map into A
    cfg = DataConfig(use_real=False, p_sar_sar=1.0, min_looks=1e6, max_looks=1e6)
    sampler = ViewSampler(scenes, [], cfg, 48, seed=0)
    for _ in range(3):
        s = sampler.sample()
        assert s.kind == "sar-sar" and s.modality_a == s.modality_b == SAR
        ok = np.isfinite(s.xy_in_a[0])
        assert ok.mean() > 0.2
        a_at_b = ndimage.map_coordinates(s.a, [s.xy_in_a[1][ok], s.xy_in_a[0][ok]], order=1)
        # each view has its own robust z-score, so compare by correlation
        corr = np.corrcoef(a_at_b, s.b[ok])[0, 1]
        assert corr > 0.9
        # a wrong map (off by 4 px) correlates clearly worse
        off = ndimage.map_coordinates(s.a, [s.xy_in_a[1][ok], s.xy_in_a[0][ok] + 4], order=1, mode="nearest")
        assert np.corrcoef(off, s.b[ok])[0, 1] < corr - 0.1


def test_batches_are_prepared_and_mix_modalities(scenes: list[Scene]) -> None:
    sampler = ViewSampler(scenes, [], DataConfig(use_real=False, p_sar_sar=0.0), 32, seed=1)
    b = sampler.batch(6)
    assert b["a"].shape == b["b"].shape == (6, 1, 32, 32) and b["xy_in_a"].shape == (6, 2, 32, 32)
    assert b["a"].min() >= -1 and b["a"].max() <= 1
    pairs = {(float(a), float(c)) for a, c in zip(b["modality_a"][:, 0], b["modality_b"][:, 0], strict=True)}
    assert pairs <= {(SAR, OPTICAL), (OPTICAL, SAR)} and len(pairs) == 2


def test_random_homographies_stay_in_range() -> None:
    cfg = DataConfig()
    rng = np.random.default_rng(0)
    for _ in range(200):
        h = random_homography(rng, cfg)
        lin = h[:2, :2]
        scale = math.sqrt(abs(np.linalg.det(lin)))
        # det = tilt / scale**2 with tilt in [1, 1.3] and scale in [0.75, 1.33]
        assert 1 / cfg.max_scale**2 * 0.99 <= scale**2 <= cfg.max_tilt / cfg.min_scale**2 * 1.01
        assert np.abs(h[2, :2]).max() <= cfg.max_perspective


def test_bad_data_is_refused(scenes: list[Scene]) -> None:
    with pytest.raises(ValueError, match="smaller than the crop"):
        ViewSampler(scenes, [], DataConfig(), 128, seed=0)
    with pytest.raises(ValueError, match="No optical-SAR pairs"):
        ViewSampler([], [], DataConfig(), 32, seed=0)
    with pytest.raises(ValueError, match="min_scale"):
        DataConfig(min_scale=2.0, max_scale=1.0)
