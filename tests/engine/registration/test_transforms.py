"""engine.registration.transforms: the kinds table, both parameterisations' fits, degeneracy, saved form."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.registration import transforms
from engine.registration.transforms import KINDS, Transform, check_kind, fit_transform, residuals


def test_one_kinds_table_serves_both_fronts() -> None:
    assert set(transforms.SHIFT_KINDS) | set(transforms.MATRIX_KINDS) == set(KINDS)
    assert KINDS["affine"].min_sample == 3 and KINDS["affine"].required_points == 4
    assert all(k.required_points >= k.min_sample for k in KINDS.values())
    assert check_kind("homography", transforms.MATRIX_KINDS) == "homography"
    with pytest.raises(InputError, match="use one of shift, affine, poly2, poly3"):
        check_kind("homography", transforms.SHIFT_KINDS)
    with pytest.raises(InputError, match="use one of similarity, affine, homography"):
        check_kind("poly2", transforms.MATRIX_KINDS)


@pytest.mark.parametrize("kind", transforms.MATRIX_KINDS)
def test_fit_model_is_exact_for_its_own_kind(kind: str) -> None:
    rng = np.random.default_rng(1)
    h = np.array([[0.9, -0.3, 12.0], [0.3, 0.9, -4.0], [0.0, 0.0, 1.0]])
    if kind == "affine":
        h[0, 1] = -0.1
    if kind == "homography":
        h[2, :2] = [1e-4, -2e-4]
    src = rng.uniform(0, 200, (20, 2))
    dst = transforms.project(h, src)
    np.testing.assert_allclose(transforms.fit_matrix(src, dst, kind), h, atol=1e-8)


@pytest.mark.parametrize("kind", transforms.MATRIX_KINDS)
def test_weighted_fit_follows_its_weights(kind: str) -> None:
    """Equal weights give the unweighted fit; a zero weight removes a point (the SAR-SAR sharpening's fit)."""
    rng = np.random.default_rng(2)
    h = np.array([[0.95, -0.2, 8.0], [0.25, 1.05, -3.0], [2e-4 if kind == "homography" else 0.0, 0.0, 1.0]])
    src = rng.uniform(0, 300, (30, 2))
    dst = transforms.project(h, src) + rng.normal(0, 0.5, (30, 2))
    dst[:5] += 40.0  # five points far off
    plain = transforms.fit_matrix(src, dst, kind)
    np.testing.assert_allclose(transforms.fit_matrix(src, dst, kind, np.full(30, 3.0)), plain, atol=1e-9)
    without = transforms.fit_matrix(src[5:], dst[5:], kind)
    weights = np.r_[np.zeros(5), np.ones(25)]
    weighted = transforms.fit_matrix(src, dst, kind, weights)
    if kind == "homography":  # the DLT's normalisation still sees the zero-weight points: nearly the same fit
        assert transforms.corner_error(weighted, without, 300, 300) < 0.01
    else:
        np.testing.assert_allclose(weighted, without, atol=1e-9)
    assert transforms.corner_error(without, h, 300, 300) < transforms.corner_error(plain, h, 300, 300)


@pytest.mark.parametrize("weights", [np.zeros(10), np.r_[np.ones(9), np.nan], np.r_[np.ones(9), -1.0],
                                     np.r_[np.ones(9), np.inf], np.ones(9)])
def test_weights_that_define_no_fit_are_refused(weights: np.ndarray) -> None:
    """All-zero, NaN, negative, infinite or a wrong number of weights: an error, not a silently
    degenerate matrix (all-zero weights gave the zero map)."""
    src = np.random.default_rng(3).uniform(0, 100, (10, 2))
    for kind in transforms.MATRIX_KINDS:
        with pytest.raises(ValueError, match="fit weights"):
            transforms.fit_matrix(src, src + 1.0, kind, weights)


def test_degenerate_transforms_are_refused() -> None:
    size = (256.0, 256.0)
    assert transforms.degeneracy(np.diag([1.0, 1.0, 1.0]), *size) is None
    assert "mirror" in (transforms.degeneracy(np.diag([-1.0, 1.0, 1.0]), *size) or "")
    assert "scale" in (transforms.degeneracy(np.diag([10.0, 10.0, 1.0]), *size) or "")
    assert "near-singular" in (transforms.degeneracy(np.diag([1.0, 0.01, 1.0]), *size) or "")
    folded = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1 / 100.0, 0, 1.0]])  # horizon at x = 100
    assert "fold" in (transforms.degeneracy(folded, *size) or "")


@pytest.mark.parametrize("kind", ["shift", "affine", "poly2", "poly3"])
def test_fit_recovers_exact_transform(kind: str) -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 500, (40, 2))
    n = {"shift": 1, "affine": 3, "poly2": 6, "poly3": 10}[kind]
    truth = Transform(kind, (250.0, 250.0), 250.0, tuple(rng.normal(0, 1, n)), tuple(rng.normal(0, 1, n)))
    dst = truth(src)
    fitted = fit_transform(src, dst, kind)
    assert np.abs(residuals(fitted, src, dst)).max() < 1e-8
    again = Transform.from_dict(fitted.to_dict())
    np.testing.assert_allclose(again(src), dst, atol=1e-8)
    if kind in ("shift", "affine"):
        h = np.c_[src, np.ones(len(src))] @ fitted.matrix().T
        np.testing.assert_allclose(h[:, :2], dst, atol=1e-8)


def test_unknown_transform_and_bad_saved_transform() -> None:
    with pytest.raises(InputError):
        fit_transform(np.zeros((3, 2)), np.zeros((3, 2)), "poly7")
    with pytest.raises(InputError, match="coefficients"):
        Transform.from_dict({"kind": "affine", "center": [0, 0], "scale": 1, "coef_x": [0], "coef_y": [0]})
    # json.loads reads NaN and Infinity: a report edited (or written by a failed fit) must not become a
    # NaN geotransform written without a word
    for key, value in (("coef_x", [0.0, float("nan"), 0.0]), ("center", [float("inf"), 0.0])):
        saved = {"kind": "affine", "center": [0, 0], "scale": 1, "coef_x": [0, 0, 0], "coef_y": [0, 0, 0]}
        with pytest.raises(InputError, match="finite"):
            Transform.from_dict({**saved, key: value})
