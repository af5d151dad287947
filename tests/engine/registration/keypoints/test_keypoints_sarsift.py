"""engine.registration.keypoints.sarsift: speckle-robust SAR-SAR keypoints and their use in
register_images."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import RegistrationError
from engine.registration import transforms
from engine.registration.keypoints import sarsift, warp
from engine.registration.keypoints.classical import ClassicalDetector
from engine.registration.keypoints.detect import Descriptions, Keypoints
from engine.registration.keypoints.register import ImageSide, register_images
from tests.engine.registration.keypoints.test_keypoints import texture


def speckled(intensity: np.ndarray, looks: int, seed: int) -> np.ndarray:
    """Amplitude of ``intensity`` under its own L-look speckle."""
    rng = np.random.default_rng(seed)
    return np.sqrt(intensity * rng.gamma(looks, 1.0 / looks, intensity.shape)).astype(np.float32)


def warped(img: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``img`` seen through ``h`` (INPUT -> REFERENCE): the INPUT image and its validity."""
    out, ok = warp.warp_onto(img, np.ones(img.shape, bool), np.linalg.inv(h),
                                   (img.shape[0], img.shape[1]))
    return out, ok


def test_roewa_gradients_ignore_the_speckle_level_and_nodata() -> None:
    img = texture(96, seed=1) ** 2
    valid = np.ones(img.shape, bool)
    gx, gy = sarsift.roewa_gradients(img, valid, 2.0)
    gx7, gy7 = sarsift.roewa_gradients(7.0 * img, valid, 2.0)
    np.testing.assert_allclose(gx7, gx, atol=1e-4)
    np.testing.assert_allclose(gy7, gy, atol=1e-4)
    # a constant image with a nodata hole: the normalised means see no edge at the hole
    flat = np.full((64, 64), 3.0)
    hole = np.ones((64, 64), bool)
    hole[20:40, 20:40] = False
    fx, fy = sarsift.roewa_gradients(np.where(hole, flat, 0.0), hole, 2.0)
    assert np.abs(fx[hole]).max() < 1e-6 and np.abs(fy[hole]).max() < 1e-6


def test_single_look_speckle_still_gives_keypoints_within_the_valid_area() -> None:
    intensity = speckled(np.ones((160, 160)), 1, seed=2) ** 2  # pure single-look speckle: no absolute level
    valid = np.ones(intensity.shape, bool)
    valid[:, 100:] = False
    kps = sarsift.extract(intensity, valid, 200)
    assert len(kps) >= 50
    assert kps.xy[:, 0].max() < 100
    np.testing.assert_allclose(np.linalg.norm(kps.described.desc, axis=1), 1.0, atol=1e-4)


def speckled_pair(looks: int) -> tuple[ImageSide, ImageSide, np.ndarray]:
    """INPUT and REFERENCE of one scene (rotation 25 deg, scale 1.2), each side under its own L-look speckle,
    and the true INPUT -> REFERENCE homography."""
    reflectivity = texture(256, seed=7) ** 2
    angle, scale = np.deg2rad(25.0), 1.2
    c = 128.0
    a = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    h_true = np.eye(3)
    h_true[:2, :2] = a
    h_true[:2, 2] = [c, c] - a @ [c, c]
    inp_refl, ok = warped(reflectivity, h_true)
    inp = np.where(ok, speckled(np.maximum(inp_refl, 1e-6), looks, seed=10 + looks), 0.0)
    ref = speckled(reflectivity, looks, seed=20 + looks)
    return (ImageSide(inp, ok, "amplitude", "INPUT"),
            ImageSide(ref, np.ones(ref.shape, bool), "amplitude", "REFERENCE"), h_true)


@pytest.mark.parametrize(("looks", "kind", "within"), [(1, "affine", 1.0), (4, "affine", 1.0),
                                                       (1, "homography", 0.6), (4, "homography", 0.6)])
def test_sar_sar_pair_with_independent_speckle_is_registered(looks: int, kind: str, within: float) -> None:
    """The classical method (SAR-SIFT keypoints, then the dense refinement on ROEWA channels) recovers the
    map within ``within`` px at the corners (the benchmark counts < 3 px as correct): sub-pixel for the
    affine the pair's truth (a similarity) is. The keypoint fit alone was 1.51 / 1.55 px off at 1 look
    (affine / homography; 0.34 / 0.77 px at 4). A homography extrapolates to the corners less well than an
    affine: from the ~150 template matches of 48 px on a grid of 16 it was 1.09 / 0.88 px off (1 / 4
    looks); the sharpening's last pass (``register.SHARPEN_LAST_PASS``: ~280-330 matches of 32 px on 32,
    fitted with weights) gives 0.38 / 0.47 px."""
    inp, ref, h_true = speckled_pair(looks)
    reg = register_images(inp, ref, ClassicalDetector(), kind)
    assert reg.model_id == sarsift.MODEL_ID
    assert transforms.corner_error(reg.matrix, h_true, 256, 256) < within
    assert reg.stages["sharpened"] == 1


def test_dense_features_ignore_the_speckle_level() -> None:
    intensity = speckled(texture(96, seed=4) ** 2, 1, seed=5) ** 2
    valid = np.ones(intensity.shape, bool)
    feats, ok = sarsift.dense_features(intensity, valid)
    feats9, _ = sarsift.dense_features(9.0 * intensity, valid)
    assert feats.shape[1:] == intensity.shape and not ok[:2].any() and ok[48, 48]
    np.testing.assert_allclose(feats9, feats, atol=1e-4)
    assert np.abs(feats[:, ~ok]).max() == 0.0


def test_a_refinement_that_moves_the_keypoint_fit_far_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense stage may only sharpen the SAR-SIFT fit: an answer 5 px away at the corners (more than the
    keypoint inliers' tolerance) leaves the keypoint fit as it was, as does a failed dense stage."""
    from engine.registration.keypoints import register as reg_module
    from engine.registration.keypoints.dense import DenseFit

    inp, ref, h_true = speckled_pair(4)
    found: list[np.ndarray] = []

    def moved(inp_side: object, ref_side: object, h: np.ndarray, *args: object, **kwargs: object) -> DenseFit:
        found.append(h)
        shifted = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ h
        pts = np.random.default_rng(0).uniform(20, 230, (40, 2))
        return DenseFit(shifted, pts, transforms.project(shifted, pts), 40, 20, 20)

    monkeypatch.setattr(reg_module, "refine", moved)
    reg = register_images(inp, ref, ClassicalDetector(), "homography")
    assert reg.stages["sharpened"] == 0
    np.testing.assert_array_equal(reg.matrix, found[0])

    def failing(*args: object, **kwargs: object) -> DenseFit:
        raise RegistrationError("Only 3 inlier match(es) among 40 template matches")

    monkeypatch.setattr(reg_module, "refine", failing)
    again = register_images(inp, ref, ClassicalDetector(), "homography")
    assert again.stages["sharpened"] == 0
    np.testing.assert_array_equal(again.matrix, found[0])
    assert transforms.corner_error(again.matrix, h_true, 256, 256) < 3.0


def test_two_consensuses_of_similar_support_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Half the keypoint matches agree on one shift, half on another: ambiguous, refused."""
    from engine.registration.keypoints import register as reg_module

    rng = np.random.default_rng(3)
    xy = rng.uniform(40, 216, (80, 2))
    desc = rng.normal(size=(80, sarsift.DESCRIPTOR_SIZE)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    shift = np.where(np.arange(80)[:, None] < 40, [25.0, 0.0], [-30.0, 10.0])
    calls: list[int] = []

    def fake_extract(*args: object) -> Keypoints:
        calls.append(1)  # INPUT first, then REFERENCE
        pts = xy + shift if len(calls) == 2 else xy
        return Keypoints(pts, np.ones(80, np.float32), np.full(80, 2.0, np.float32),
                         Descriptions(desc, None, np.zeros((80, 0), np.float32), np.zeros(80)))

    monkeypatch.setattr(reg_module.sarsift, "extract", fake_extract)
    img, ok = np.ones((256, 256), np.float32), np.ones((256, 256), bool)
    with pytest.raises(RegistrationError, match="ambiguous"):
        register_images(ImageSide(img, ok, "db", "INPUT"), ImageSide(img, ok, "db", "REFERENCE"),
                        ClassicalDetector(), "similarity")


def test_the_sharpenings_last_pass_has_its_own_templates_grid_and_weights() -> None:
    """``dense.refine(last_pass=)`` changes only the last pass: 32 px templates on 32 per side find more
    matches than the default 48 px on 16; the weights grow with the correlation peak."""
    from engine.registration.keypoints import dense

    inp, ref, h_true = speckled_pair(4)
    sides = [sarsift.linear_intensity(s.values, s.kind, s.valid) for s in (inp, ref)]
    fits = [dense.refine(sides[0], sides[1], h_true, "homography", feature_maps=sarsift.dense_features,
                         affine_choice=False, first_pass=1, last_pass=last)
            for last in (None, dense.LastPass(32, 32, weighted=False), dense.LastPass(32, 32, weighted=True))]
    assert fits[1].n_matches == fits[2].n_matches > 1.5 * fits[0].n_matches
    assert fits[0].sharp == fits[1].sharp == fits[2].sharp  # counted on the first pass run, unchanged
    assert not np.array_equal(fits[1].matrix, fits[2].matrix)
    w = dense.match_weights(np.array([-0.2, 0.0, 0.3, 0.6, 0.9, 1.0]))
    assert w[0] == w[1] == 0.0 and (np.diff(w[1:]) > 0).all() and np.isfinite(w).all()
