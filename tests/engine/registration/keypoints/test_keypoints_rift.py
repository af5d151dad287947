"""engine.registration.keypoints RIFT: phase congruency, maximum index map descriptors, optical-SAR fit."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import RegistrationError
from engine.registration import transforms
from engine.registration.keypoints import rift
from engine.registration.keypoints.detect import Keypoints
from engine.registration.keypoints.phase_congruency import maximum_index, phase_congruency
from engine.registration.keypoints.register import ImageSide, _keypoint_fit
from engine.registration.keypoints.uncertainty import corner_uncertainty
from engine.registration.keypoints.warp import warp_onto
from engine.registration.prepare import prepare_image
from engine.run import QUIET
from tests.engine.registration.keypoints.test_keypoints import texture


def _similarity(angle_deg: float, scale: float, centre: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    m = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    h = np.eye(3)
    h[:2, :2] = m
    h[:2, 2] = centre - m @ np.array([centre, centre]) + np.asarray(shift)
    return h


def _warped(img: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``out(q) = img(h^-1 q)`` and its validity (INPUT -> REFERENCE map ``h^-1``)."""
    out, ok = warp_onto(img, np.ones(img.shape, bool), h, (img.shape[0], img.shape[1]))
    return np.where(ok, out, 0).astype(np.float32), ok


def test_phase_congruency_ignores_a_contrast_change() -> None:
    img = texture(96, seed=1)
    pc = phase_congruency(img)
    other = phase_congruency(7.5 * img + 30.0)
    assert pc.max_moment.max() > 0.1  # the rectangles' edges are found
    np.testing.assert_allclose(other.max_moment, pc.max_moment, atol=1e-3)
    np.testing.assert_allclose(other.min_moment, pc.min_moment, atol=1e-3)
    strong = pc.amplitude > np.quantile(pc.amplitude, 0.5)
    turn = np.abs(np.angle(np.exp(2j * (other.orientation - pc.orientation))))[strong]
    assert np.quantile(turn, 0.99) < 1e-2


def test_the_maximum_index_map_turns_with_the_image() -> None:
    """A turn of the image moves its MIM orientations by the turn (modulo 180 degrees), which the
    descriptor removes by measuring them from the keypoint's dominant orientation."""
    img = texture(128, seed=2)
    h = _similarity(30.0, 1.0, 64.0, (0.0, 0.0))
    moved, ok = _warped(img, h)
    a, b = phase_congruency(img), phase_congruency(moved, ok)
    xy = np.array([[64.0, 64.0], [50.0, 70.0], [75.0, 55.0]])
    turn = rift.dominant_orientation(b, ok, transforms.project(h, xy)) - rift.dominant_orientation(
        a, np.ones(img.shape, bool), xy)
    assert np.all(np.abs(np.angle(np.exp(2j * (turn - np.deg2rad(30.0))))) < np.deg2rad(6.0))


def test_maximum_index_is_the_orientation_of_largest_amplitude() -> None:
    amp = np.zeros((6, 1, 3), np.float32)
    amp[2, 0, 0] = 1.0  # exactly orientation 2
    amp[[1, 2, 3], 0, 1] = [0.5, 1.0, 0.9]  # between 2 and 3, nearer 2
    amp[[5, 0, 1], 0, 2] = [0.8, 1.0, 0.8]  # orientation 0 (cyclic neighbours)
    angle, best = maximum_index(amp)
    step = np.pi / 6
    assert angle[0, 0] == pytest.approx(2 * step)
    assert 2 * step < angle[0, 1] < 2.5 * step
    assert angle[0, 2] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(best[0], 1.0)


def _sar_like(img: np.ndarray, seed: int) -> np.ndarray:
    """Another modality's view of a scene: brightness inverted and squared (a non-linear radiometry),
    times 8-look multiplicative speckle."""
    rng = np.random.default_rng(seed)
    return ((img.max() + img.min() - img) ** 2 * rng.gamma(8, 1 / 8, img.shape)).astype(np.float32)


def _turned_pair_keypoints() -> tuple[list[Keypoints], np.ndarray]:
    """RIFT keypoints of a scene and of its turned, scaled view in another modality; the turn."""
    ref = texture(160, seed=6)
    g = _similarity(25.0, 1.2, 80.0, (5.0, -4.0))
    inp, ok = _warped(_sar_like(ref, seed=7), g)
    sides = (ImageSide(inp, ok, "intensity", "INPUT"), ImageSide(ref, np.ones(ref.shape, bool), "optical",
                                                                 "REFERENCE"))
    kps = [rift.extract(prepare_image(s.values, s.kind, s.valid), s.valid, s.role, QUIET) for s in sides]
    return kps, g


def test_rift_keypoints_register_a_turned_and_scaled_pair_of_two_modalities() -> None:
    kps, g = _turned_pair_keypoints()
    fit = _keypoint_fit(kps[0], kps[1], "similarity", (160.0, 160.0), {}, QUIET)
    assert len(fit.src) >= 20
    assert transforms.corner_error(fit.matrix, np.linalg.inv(g), 160, 160) < 2.0


def test_a_final_refit_that_loses_support_does_not_replace_the_keypoint_hypothesis(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding 2: the keypoint front's final least-squares refit (here spoiled by 40 px, so it
    loses every inlier) gives way to the RANSAC hypothesis it came from; it used to be taken."""
    from engine.registration.keypoints import register

    kps, g = _turned_pair_keypoints()
    off = np.array([[1.0, 0.0, 40.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    monkeypatch.setattr(register, "fit_matrix", lambda s, d, k: off @ transforms.fit_matrix(s, d, k))
    fit = _keypoint_fit(kps[0], kps[1], "similarity", (160.0, 160.0), {}, QUIET)
    assert transforms.corner_error(fit.matrix, np.linalg.inv(g), 160, 160) < 2.0


def test_rift_keypoints_of_unrelated_scenes_are_refused() -> None:
    a, b = texture(160, seed=10), _sar_like(texture(160, seed=11), seed=7)
    ok = np.ones(a.shape, bool)
    kps = [rift.extract(prepare_image(img, kind, ok), ok, role, QUIET)
           for img, kind, role in ((b, "intensity", "INPUT"), (a, "optical", "REFERENCE"))]
    with pytest.raises(RegistrationError, match="inlier"):
        _keypoint_fit(kps[0], kps[1], "similarity", (160.0, 160.0), {}, QUIET)


def test_a_featureless_image_has_no_rift_keypoints() -> None:
    flat = np.full((96, 96), 3.0, np.float32)
    ok = np.ones(flat.shape, bool)
    assert len(rift.extract(prepare_image(flat, "optical", ok), ok, "REFERENCE", QUIET)) == 0


def test_corner_uncertainty_is_nil_for_exact_matches_and_largest_where_matches_are_missing() -> None:
    rng = np.random.default_rng(3)
    h = _similarity(10.0, 1.1, 100.0, (3.0, -2.0))
    src = rng.uniform(0, 100, (60, 2))  # matches in the top-left quarter of a 200 x 200 image only
    exact = corner_uncertainty(src, transforms.project(h, src), "affine", 200.0, 200.0)
    np.testing.assert_allclose(exact, 0.0, atol=1e-6)
    noisy = corner_uncertainty(src, transforms.project(h, src) + rng.normal(0, 1.0, src.shape), "affine",
                               200.0, 200.0)
    assert np.all(noisy > 0.1)
    assert np.argmin(noisy) == 0 and np.argmax(noisy) == 2  # top-left held best, bottom-right worst
    assert np.all(np.isnan(corner_uncertainty(src[:5], src[:5], "affine", 200.0, 200.0)))


def test_tiled_phase_congruency_agrees_with_the_whole_image() -> None:
    from engine.registration.keypoints.phase_congruency import phase_congruency_tiled

    img = texture(320, seed=8)
    ok = np.ones(img.shape, bool)
    whole = phase_congruency(img, ok)
    np.testing.assert_array_equal(phase_congruency_tiled(img, ok, tile_size=320).max_moment,
                                  whole.max_moment)  # one tile: computed whole
    tiled = phase_congruency_tiled(img, ok, tile_size=192, overlap=96)
    # away from the image border (where each FFT wraps around differently) the tiles, which use the
    # whole image's noise levels, give the whole image's maps
    inner = (slice(80, 240), slice(80, 240))
    np.testing.assert_allclose(tiled.max_moment[inner], whole.max_moment[inner], atol=1e-2)
    np.testing.assert_allclose(tiled.min_moment[inner], whole.min_moment[inner], atol=1e-2)
    strong = whole.amplitude[inner] > np.median(whole.amplitude[inner])
    turn = np.abs(np.angle(np.exp(2j * (tiled.orientation[inner] - whole.orientation[inner]))))[strong]
    assert np.quantile(turn, 0.99) < 1e-2


class _CancelAfter:
    """An ``is_cancelled`` that answers False ``n`` times, then True; counts its calls."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.n


def test_cancel_during_tiled_phase_congruency_stops_it_at_the_next_orientation() -> None:
    """Review finding 1: cancel is polled per tile and orientation, not only before the filtering."""
    from engine.errors import CancelledError
    from engine.registration.keypoints.phase_congruency import ORIENTATIONS, phase_congruency_tiled
    from engine.run import Run

    img = texture(320, seed=8)
    ok = np.ones(img.shape, bool)
    asked = _CancelAfter(ORIENTATIONS + 2)  # the noise levels, then two orientations of the first tile
    with pytest.raises(CancelledError, match="RIFT phase congruency was cancelled"):
        phase_congruency_tiled(img, ok, tile_size=192, overlap=96, run=Run(is_cancelled=asked))
    assert asked.calls == asked.n + 1  # stopped at the first poll that saw the cancel


def test_cancel_after_the_first_check_stops_rift_keypoint_extraction() -> None:
    from engine.errors import CancelledError
    from engine.run import Run

    img = texture(96, seed=1)
    ok = np.ones(img.shape, bool)
    asked = _CancelAfter(1)  # extract's own check passes; the filtering's first check sees the cancel
    with pytest.raises(CancelledError):
        rift.extract(prepare_image(img, "optical", ok), ok, "INPUT", Run(is_cancelled=asked))
    assert asked.calls == 2
