"""engine.registration.ransac: the one robust fit, on 3 x 3 matrices and on displacement polynomials."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from engine.errors import RegistrationError
from engine.registration import transforms
from engine.registration.ransac import (
    MatrixModel,
    PolynomialModel,
    RansacResult,
    draw_samples,
    ransac,
    ransac_matrix,
    refit_unless_worse,
)
from engine.registration.shift.fitting import robust_fit
from engine.registration.transforms import Transform, residuals


@pytest.mark.parametrize("kind", transforms.MATRIX_KINDS)
def test_ransac_recovers_the_model_among_outliers(kind: str) -> None:
    rng = np.random.default_rng(2)
    h = np.array([[1.1, -0.2, 5.0], [0.2, 1.1, 8.0], [0.0, 0.0, 1.0]])
    src = rng.uniform(0, 256, (120, 2))
    dst = transforms.project(h, src) + rng.normal(0, 0.3, (120, 2))
    dst[:60] = rng.uniform(0, 256, (60, 2))  # 50 % outliers
    fit = ransac_matrix(src, dst, kind, 2.0, (256.0, 256.0))
    assert fit is not None
    assert fit.inliers[60:].mean() > 0.95 and fit.inliers[:60].mean() < 0.1
    assert transforms.corner_error(fit.matrix, h, 256, 256) < 0.5


def test_ransac_skips_and_reports_rejected_hypotheses() -> None:
    """A mirrored point set: every hypothesis is refused by the degeneracy check, and why is reported."""
    size = (256.0, 256.0)
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 256, (40, 2))
    dst = src * [-1, 1] + [256, 0]
    refused: list[tuple[int, str]] = []
    assert ransac_matrix(src, dst, "affine", 2.0, size, refused=refused) is None
    support, reason = max(refused)
    assert support == 40 and "mirror" in reason


def test_ransac_rejects_planted_outliers() -> None:
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 1000, (60, 2))
    a = np.array([[1.001, 0.002], [-0.0015, 0.999]])
    dst = src @ a.T + np.array([4.2, -3.1]) + rng.normal(0, 0.2, src.shape)
    bad = rng.choice(60, 12, replace=False)
    dst[bad] += rng.uniform(8, 30, (12, 2)) * rng.choice([-1, 1], (12, 2))
    t, inliers = robust_fit(src, dst, "affine", 1.5)
    assert not inliers[bad].any()
    assert inliers.sum() >= 45
    assert np.sqrt((residuals(t, src, dst)[inliers] ** 2).sum(axis=1).mean()) < 0.5


def test_ransac_needs_enough_points() -> None:
    with pytest.raises(RegistrationError, match="at least 10"):
        robust_fit(np.zeros((5, 2)), np.zeros((5, 2)), "poly3", 2.0)


@pytest.mark.parametrize("kind", ["shift", "poly2", "poly3"])
def test_polynomial_ransac_recovers_the_transform_among_outliers(kind: str) -> None:
    rng = np.random.default_rng(4)
    n = {"shift": 1, "poly2": 6, "poly3": 10}[kind]
    truth = Transform(kind, (200.0, 200.0), 200.0, tuple(rng.normal(0, 2, n)), tuple(rng.normal(0, 2, n)))
    src = rng.uniform(0, 400, (150, 2))
    dst = truth(src) + rng.normal(0, 0.2, src.shape)
    dst[:50] += rng.uniform(6, 40, (50, 2)) * rng.choice([-1, 1], (50, 2))
    fit = ransac(src, dst, PolynomialModel.of(kind, src), 1.5)
    assert fit is not None
    assert not fit.inliers[:50].any() and fit.inliers[50:].mean() > 0.95


@dataclass(frozen=True)
class _FitOffBy(MatrixModel):
    """A matrix model whose least-squares refit (the local optimisation) is spoiled by ``spoil``."""

    spoil: np.ndarray = field(default_factory=lambda: np.eye(3))

    def fit(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        return self.spoil @ super().fit(src, dst)


def _noisy_similarity(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = np.array([[0.95, -0.1, 12.0], [0.1, 0.95, -7.0], [0.0, 0.0, 1.0]])
    src = rng.uniform(0, 256, (80, 2))
    dst = transforms.project(h, src) + rng.normal(0, 0.3, (80, 2))
    dst[:20] = rng.uniform(0, 256, (20, 2))
    return src, dst, h


def test_ransac_keeps_the_hypothesis_when_its_refit_loses_support() -> None:
    """Local optimisation never makes the result worse: a refit with less support than the minimal-sample
    hypothesis it came from is dropped, not kept in its place (which lost every hypothesis here)."""
    src, dst, h = _noisy_similarity(5)
    moved_away = np.array([[1.0, 0.0, 40.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    fit = ransac(src, dst, _FitOffBy("affine", moved_away), 2.0)
    assert fit is not None
    assert fit.inliers[20:].mean() > 0.9 and transforms.corner_error(fit.matrix, h, 256, 256) < 2.0


def test_a_final_refit_that_reprojects_the_inliers_worse_gives_way_to_the_hypothesis() -> None:
    """Review finding 2: the keypoint fronts' least-squares refit on the inliers is kept unless it fits them
    worse than the RANSAC hypothesis did; the least-squares affine of noisy inliers is always kept."""
    src, dst, h = _noisy_similarity(7)
    inl = np.zeros(len(src), bool)
    inl[20:] = True
    err = transforms.reprojection_errors(h, src, dst)
    found = RansacResult(h, inl, float(np.sqrt(np.mean(err[inl] ** 2))))
    affine = transforms.fit_matrix(src[inl], dst[inl], "affine")
    assert refit_unless_worse(affine, found, src, dst) is affine
    moved = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ affine  # 1 px off: worse
    np.testing.assert_array_equal(refit_unless_worse(moved, found, src, dst), h)


def test_a_weighted_refit_is_judged_by_its_weighted_rms() -> None:
    """The SAR-SAR sharpening's weighted refit: kept when it reprojects the inliers better by the weighted
    RMS, although its unweighted RMS is worse than the hypothesis's (the unweighted test refused every
    weighted fit); refused when it is worse by the weighted RMS as well."""
    src, dst, _ = _noisy_similarity(7)
    inl = np.zeros(len(src), bool)
    inl[20:] = True
    s, d = src[inl], dst[inl]
    plain = transforms.fit_matrix(s, d, "affine")
    rms = float(np.sqrt(np.mean(transforms.reprojection_errors(plain, s, d) ** 2)))
    found = RansacResult(plain, inl, rms)
    weights = np.linspace(0.1, 10.0, len(s))
    weighted = transforms.fit_matrix(s, d, "affine", weights)
    assert refit_unless_worse(weighted, found, src, dst) is plain  # the unweighted RMS prefers plain
    assert refit_unless_worse(weighted, found, src, dst, weights) is weighted
    moved = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ weighted
    assert refit_unless_worse(moved, found, src, dst, weights) is plain


def test_ransac_keeps_the_accepted_hypothesis_when_its_refit_is_rejected() -> None:
    """A refit that the degeneracy check refuses (here: mirrored) leaves the accepted hypothesis it came
    from; it used to discard both."""
    src, dst, h = _noisy_similarity(6)
    mirror = np.diag([-1.0, 1.0, 1.0])
    size = (256.0, 256.0)
    fit = ransac(src, dst, _FitOffBy("affine", mirror), 2.0, reject=lambda m: transforms.degeneracy(m, *size))
    assert fit is not None
    assert transforms.degeneracy(fit.matrix, *size) is None
    assert fit.inliers[20:].mean() > 0.9 and transforms.corner_error(fit.matrix, h, 256, 256) < 2.0


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 2), (7, 4), (1500, 4), (40, 10)])
def test_samples_are_the_full_sorts_first_indices(n: int, m: int) -> None:
    """The partial sort draws exactly the samples of ``argsort(keys)[:, :m]`` (same seed, same order), so the
    fits and figures do not move; every sample holds ``m`` distinct indices."""
    got = draw_samples(np.random.default_rng(11), n, m, batch=64)
    expected = np.argsort(np.random.default_rng(11).random((64, n)), axis=1)[:, :m]
    np.testing.assert_array_equal(got, expected)
    assert all(len(set(row)) == m for row in got.tolist())
