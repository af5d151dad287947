"""Translation metrics: PSNR, SSIM, structure score, colour error, Frechet distance, baselines."""

from __future__ import annotations

import numpy as np
import pytest

from training.translation import metrics
from training.translation.evaluate import grey_stretch, mean_colour_image


def _scene(seed: int = 0, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.kron(rng.random((8, 8)), np.ones((shape[0] // 8, shape[1] // 8)))
    return np.clip(np.stack([base * 0.6 + 0.1, base * 0.5 + 0.2, base * 0.3 + 0.3]), 0, 1)


def test_psnr_and_colour_error_known_values() -> None:
    a = np.full((3, 8, 8), 0.5)
    b = a + 0.1
    assert metrics.psnr(b, a) == pytest.approx(20.0)  # mse 0.01
    assert metrics.colour_error(b, a) == pytest.approx(0.1)
    assert metrics.psnr(a, a) == float("inf")
    valid = np.zeros((8, 8), bool)
    valid[:2] = True
    b[:, 2:] = 0.0  # masked-out pixels do not count
    assert metrics.colour_error(b, a, valid) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="RGB"):
        metrics.psnr(a[:2], a[:2])


def test_colour_distribution_distance() -> None:
    t = _scene(0)
    assert metrics.colour_distribution_distance(t, t) == pytest.approx(0.0, abs=1e-12)
    # the same pixels in another order: same colours in the same amounts
    shuffled = t.reshape(3, -1)[:, np.random.default_rng(1).permutation(t[0].size)].reshape(t.shape)
    assert metrics.colour_distribution_distance(shuffled, t) == pytest.approx(0.0, abs=1e-12)
    assert metrics.colour_error(shuffled, t) > 0.05
    # a flat image: the mean absolute deviation of the target from that colour, per channel
    flat = np.broadcast_to(np.array([0.5, 0.5, 0.5]).reshape(3, 1, 1), t.shape)
    expected = np.mean([np.abs(t[c] - 0.5).mean() for c in range(3)])
    assert metrics.colour_distribution_distance(flat, t) == pytest.approx(expected)


def test_ssim_and_structure_score() -> None:
    t = _scene(0)
    assert metrics.ssim_rgb(t, t) == pytest.approx(1.0)
    # structure ignores brightness, contrast and colour: a grey, darker copy keeps the same layout
    grey = np.repeat(np.tensordot(metrics.LUMA, t, axes=1)[None] * 0.5 + 0.1, 3, axis=0)
    assert metrics.structure_score(grey, t) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ssim_rgb(grey, t) < 0.9
    # an unrelated layout scores near 0, a flat image exactly 0 structure
    assert abs(metrics.structure_score(_scene(1), t)) < 0.3
    assert abs(metrics.structure_score(np.full_like(t, 0.4), t)) < 0.05
    # a flat colour with unequal channels (the mean-colour rendering) is flat too, not amplified rounding
    colour = np.broadcast_to(np.array([0.3267, 0.3486, 0.3526], np.float32).reshape(3, 1, 1), t.shape)
    assert not np.any(metrics.zscored_luminance(np.ascontiguousarray(colour)))
    assert metrics.structure_score(np.ascontiguousarray(colour), t) == metrics.structure_score(
        np.full_like(t, 0.4), t
    )


def test_frechet_distance_of_known_gaussians() -> None:
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert metrics.frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[1.0]])
    ) == pytest.approx(4.0 + 1.0)
    # diagonal covariances: sum over dimensions of the 1-D formula
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(want)
    # from samples: two Gaussians in 4-D, a rotated covariance, sample FID close to the truth
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    c1, c2 = np.diag([1.0, 2.0, 0.5, 1.5]), q @ np.diag([1.0, 1.0, 3.0, 0.2]) @ q.T
    m1, m2 = np.zeros(4), np.array([1.0, -1.0, 0.5, 0.0])
    truth = metrics.frechet_distance(m1, c1, m2, c2)
    x = rng.multivariate_normal(m1, c1, 200_000)
    y = rng.multivariate_normal(m2, c2, 200_000)
    assert metrics.fid_from_features(x, y) == pytest.approx(truth, rel=0.02)
    assert metrics.fid_from_features(x, x) == pytest.approx(0.0, abs=1e-6)


def test_trivial_renderings() -> None:
    db = np.linspace(-25, 0, 100).reshape(10, 10)
    g = grey_stretch(db)
    assert g.shape == (3, 10, 10) and (g[0] == g[1]).all() and g.min() == 0 and g.max() == 1
    m = mean_colour_image(np.array([0.1, 0.2, 0.3]), (4, 5))
    assert m.shape == (3, 4, 5) and m[2, 3, 4] == pytest.approx(0.3)
