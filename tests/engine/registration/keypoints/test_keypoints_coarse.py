"""engine.registration.keypoints.coarse and .dense: the dense similarity search and the template-matching
fine stage."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import RegistrationError
from engine.registration import transforms
from engine.registration.keypoints import coarse, dense
from engine.registration.keypoints.register import _choose, _Fit
from engine.registration.prepare import prepare_image
from tests.engine.registration.keypoints.test_keypoints import texture


def warped(img: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``img`` seen through ``h`` (the returned image's pixel corners -> ``img``'s), invalid outside."""
    from scipy import ndimage

    rows, cols = img.shape
    yy, xx = np.mgrid[:rows, :cols]
    q = transforms.project(h, np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)) - 0.5
    out = ndimage.map_coordinates(img, [q[:, 1], q[:, 0]], order=3, cval=np.nan).reshape(rows, cols)
    ok = np.isfinite(out)
    return np.where(ok, out, 0.0).astype(np.float32), ok


def similarity_about_centre(angle_deg: float, scale: float, size: int,
                            shift: tuple[float, float]) -> np.ndarray:
    c = np.array([size / 2, size / 2])
    h = np.eye(3)
    h[:2, :2] = coarse.similarity(angle_deg, scale)
    h[:2, 2] = c - h[:2, :2] @ c + np.asarray(shift)
    return h


def test_pool_averages_valid_blocks_only() -> None:
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    valid = np.ones((4, 4), bool)
    valid[0, 0] = False
    side = coarse.pool(img, valid, 2)
    np.testing.assert_allclose(side.img, [[(1 + 4 + 5) / 3, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(side.valid, [[False, True], [True, True]])


def test_masked_ncc_peaks_at_the_known_shift_and_ignores_invalid_pixels() -> None:
    img = prepare_image(texture(96, seed=3), "intensity")
    feats, ok = coarse.features(img, np.ones(img.shape, bool))
    template, t_ok = feats[:, 20:70, 10:60].copy(), ok[20:70, 10:60].copy()
    template[:, :10] = 5.0  # garbage where the template is marked invalid
    t_ok[:10] = False
    ref = coarse._Reference(feats, ok, (160, 160))
    ncc, overlap = coarse.masked_ncc(np.where(t_ok, template, 0.0), t_ok, ref)
    ncc = np.where(overlap >= coarse.MIN_OVERLAP * t_ok.sum(), ncc, -np.inf)  # as the search does
    iy, ix = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    assert (iy, ix) == (20, 10)  # canvas pixel (x, y) lies at reference (x + 10, y + 20)
    assert ncc[iy, ix] == pytest.approx(1.0, abs=1e-4)
    assert overlap[iy, ix] == t_ok.sum()


@pytest.mark.parametrize(("angle", "scale"), [(17.0, 1.2), (-26.0, 0.8)])
def test_a_known_rotation_and_scale_is_recovered_within_a_pixel(angle: float, scale: float) -> None:
    ref = texture(192, seed=21)
    truth = similarity_about_centre(angle, scale, 192, (6.0, -4.0))  # INPUT -> REFERENCE
    inp, ok = warped(ref, truth)
    a, b = prepare_image(inp, "intensity", ok), prepare_image(ref, "intensity")
    best = coarse.search(a, ok, b, np.ones(ref.shape, bool))[0]
    assert abs(best.angle_deg - angle) <= coarse.ROTATION_STEP
    assert transforms.corner_error(best.matrix, truth, 192, 192) < 8.0
    fit = dense.refine((a, ok), (b, np.ones(ref.shape, bool)), best.matrix, "similarity")
    assert transforms.corner_error(fit.matrix, truth, 192, 192) < 1.0
    assert len(fit.src) >= 8 and fit.sharp_inliers >= 4


def test_a_refit_that_loses_support_does_not_replace_the_dense_hypothesis(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding 2: each dense pass keeps RANSAC's hypothesis when the least-squares refit on its
    inliers has fewer inliers (here the refit is spoiled by 40 px; it used to be taken)."""
    ref = texture(192, seed=21)
    truth = similarity_about_centre(17.0, 1.2, 192, (6.0, -4.0))
    inp, ok = warped(ref, truth)
    a, b = prepare_image(inp, "intensity", ok), prepare_image(ref, "intensity")
    start = coarse.search(a, ok, b, np.ones(ref.shape, bool))[0].matrix
    off = np.array([[1.0, 0.0, 40.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    monkeypatch.setattr(dense, "fit_matrix", lambda s, d, k: off @ transforms.fit_matrix(s, d, k))
    fit = dense.refine((a, ok), (b, np.ones(ref.shape, bool)), start, "similarity", affine_choice=False)
    assert transforms.corner_error(fit.matrix, truth, 192, 192) < 1.5


def test_held_out_selection_prefers_affine_for_noisy_clustered_matches() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(80, 176, (60, 2))
    affine = np.array([[1.1, 0.1, 5.0], [-0.05, 0.95, -3.0], [0, 0, 1.0]])
    noisy = transforms.project(affine, src) + rng.normal(0, 1.0, src.shape)
    chosen = dense._select(src, noisy, "homography")
    np.testing.assert_allclose(chosen[2], [0, 0, 1.0], atol=1e-12)  # no perspective terms
    strong = affine.copy()
    strong[2, :2] = [1e-3, -8e-4]
    exact = transforms.project(strong, src) + rng.normal(0, 0.05, src.shape)
    assert abs(dense._select(src, exact, "homography")[2, 0]) > 5e-4


def _fit(h: np.ndarray, n: int) -> _Fit:
    pts = np.zeros((n, 2))
    return _Fit(h, h, pts, pts, n, "dense")


def test_two_different_fits_with_similar_support_are_refused_as_ambiguous() -> None:
    shifted = np.eye(3)
    shifted[0, 2] = 20.0
    with pytest.raises(RegistrationError, match="ambiguous"):
        _choose([_fit(np.eye(3), 40), _fit(shifted, 35)], (256.0, 256.0), "homography")
    assert _choose([_fit(np.eye(3), 40), _fit(shifted, 10)], (256.0, 256.0), "homography").n_matches == 40


def test_the_dense_stage_takes_cfog_or_the_combined_channels_by_name() -> None:
    """``dense_features='combined'`` (an option; decision record 2026-12-07-keypoints-deep-dense.md) is the
    shift front's combined extractor, the bundled embedding and CFOG, zero where CFOG is: outside the
    eroded validity."""
    from engine.errors import InputError

    assert dense.dense_feature_maps("cfog") is coarse.features
    img = prepare_image(texture(96, seed=3), "intensity")
    valid = np.ones(img.shape, bool)
    valid[:, :20] = False
    feats, ok = dense.dense_feature_maps("combined")(img, valid)
    cfog, cfog_ok = coarse.features(img, valid)
    assert feats.shape == (16 + len(cfog), *img.shape)
    np.testing.assert_array_equal(ok, cfog_ok)
    assert not feats[:, ~ok].any() and feats[:, ok].any()
    with pytest.raises(InputError, match="dense feature kind"):
        dense.dense_feature_maps("deep")


def test_combined_dense_channels_without_the_model_are_refused_naming_the_option(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No bundled ``Task.EMBED`` model: the error names ``dense_features`` and its default, not the shift
    front's METHOD parameter."""
    from engine.registration.shift import deep

    monkeypatch.setattr(deep, "find_embed_model", lambda folder=None: None)
    with pytest.raises(RegistrationError, match="dense_features='cfog'") as caught:
        dense.dense_feature_maps("combined")
    assert "METHOD" not in str(caught.value)


def test_the_combined_dense_stage_recovers_a_known_rotation_and_scale() -> None:
    ref = texture(192, seed=21)
    truth = similarity_about_centre(17.0, 1.2, 192, (6.0, -4.0))
    inp, ok = warped(ref, truth)
    a, b = prepare_image(inp, "intensity", ok), prepare_image(ref, "intensity")
    start = coarse.search(a, ok, b, np.ones(ref.shape, bool))[0].matrix
    fit = dense.refine((a, ok), (b, np.ones(ref.shape, bool)), start, "similarity",
                       feature_maps=dense.dense_feature_maps("combined"))
    assert transforms.corner_error(fit.matrix, truth, 192, 192) < 1.0
    assert fit.sharp_inliers >= 4


@pytest.mark.parametrize("first_accepted", [True, False])
def test_the_finer_search_runs_only_when_asked_and_no_start_of_the_first_is_accepted(
        monkeypatch: pytest.MonkeyPatch, first_accepted: bool) -> None:
    from engine.registration.keypoints import register
    from engine.run import QUIET

    good, bad = np.eye(3), np.diag([1.2, 1.2, 1.0])
    levels_asked: list[tuple[int, int]] = []

    def fake_search(*args: object) -> list[coarse.CoarseResult]:
        levels = args[5]
        assert isinstance(levels, tuple)
        levels_asked.append(levels)
        first = levels == (coarse.GRID_SIDE, coarse.COARSE_SIDE)
        start = good if first == first_accepted else bad
        return [coarse.CoarseResult(start, 0.3, 0.1, 0.0, 1.0)]

    def fake_refine(a: object, b: object, h0: np.ndarray, *rest: object) -> dense.DenseFit:
        if not np.allclose(h0, good):
            raise RegistrationError("no consensus")
        pts = np.zeros((30, 2))
        return dense.DenseFit(h0, pts, pts, 30, 20, 20)

    monkeypatch.setattr(register, "search", fake_search)
    monkeypatch.setattr(register, "refine", fake_refine)
    side = (np.zeros((64, 64), np.float32), np.ones((64, 64), bool))
    first = (coarse.GRID_SIDE, coarse.COARSE_SIDE)
    fits, errors = register._dense_fits(side, side, "homography", [], QUIET)  # the default: one search
    assert levels_asked == [first] and len(fits) == (1 if first_accepted else 0)
    levels_asked.clear()
    fits, errors = register._dense_fits(side, side, "homography", [], QUIET, finer_search=True)
    assert [np.allclose(f.coarse_matrix, good) for f in fits] == [True]
    assert levels_asked == [first] + ([] if first_accepted else [coarse.FINER_LEVELS])
    assert len(errors) == (0 if first_accepted else 1)
