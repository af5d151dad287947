"""The ceiling investigation's whole-overlap feature score peaks at the transform that aligns the images."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from benchmarks.investigations.keypoints_ceiling import Ceiling, feature_ncc, table
from engine.registration.keypoints.coarse import features


def _scene(seed: int = 3, size: int = 96) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=(size, size))
    return ndimage.gaussian_filter(noise, 3).astype(np.float32)


def _shift(dx: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_the_feature_score_peaks_at_the_aligning_transform() -> None:
    img = _scene()
    valid = np.ones(img.shape, bool)
    moved = ndimage.shift(img, (0.0, 4.0), order=1, mode="nearest")  # content 4 px to the right
    ref = features(moved, valid)
    right = feature_ncc((img, valid), ref, _shift(4.0))
    assert right > 0.95
    assert feature_ncc((img, valid), ref, _shift(0.0)) < right - 0.2
    assert feature_ncc((img, valid), ref, _shift(8.0)) < right - 0.2


def test_the_table_counts_reached_and_accepted_cases() -> None:
    rows = [Ceiling("a", (1.0, 20.0), 1.5, 6, 0.2, 0.21), Ceiling("b", (30.0, 40.0), 2.0, 2, 0.1, 0.1),
            Ceiling("c", (50.0, 60.0), float("inf"), 0, 0.0, float("nan"))]
    text = table(rows)
    assert "| a | 1.0, 20.0 | 1.50 | 6 |" in text
    assert "ends within 3 px on 2 (1 with at least 4 sharp matches" in text
    assert "lies within 9 px of the truth on 1." in text
