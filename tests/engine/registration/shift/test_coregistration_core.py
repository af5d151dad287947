"""Co-registration numerics without files: features and the FFT search."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.registration.correlation import coarse_levels_for, match
from engine.registration.features import FEATURE_EXTRACTORS, OrientedGradientFeatures, get_extractor
from engine.synthetic import generate_scene_pair


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    ky = np.fft.fftfreq(img.shape[0], d=1.0)[:, None]
    kx = np.fft.fftfreq(img.shape[1], d=1.0)[None, :]
    return np.fft.ifft2(np.fft.fft2(img) * np.exp(-2j * np.pi * (kx * dx + ky * dy))).real


def test_features_are_normalised_and_invariant_to_contrast_reversal() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((64, 64)).astype(np.float32)
    valid = np.ones_like(img, dtype=bool)
    valid[:8] = False
    per_pixel = OrientedGradientFeatures(norm_sigma=0.0)
    f = per_pixel(img, valid)
    assert f.shape == (9, 64, 64)
    norms = np.sqrt((f[:, 8:] ** 2).sum(axis=0))
    assert np.all(norms < 1.0 + 1e-5) and np.median(norms) > 0.9
    assert np.all(f[:, :8] == 0)  # masked pixels carry no features
    np.testing.assert_allclose(per_pixel(1.0 - img, valid), f, atol=1e-5)
    local = OrientedGradientFeatures()  # default: local contrast normalisation
    g = local(img * 50.0 + 3.0, valid)  # gain and offset do not matter
    np.testing.assert_allclose(g, local(img, valid), atol=1e-4)
    assert 0.5 < float((g[:, 16:] ** 2).sum(axis=0).mean()) < 1.5


def test_unknown_method_is_refused() -> None:
    assert {"classical", "gradmag"} <= set(FEATURE_EXTRACTORS)
    with pytest.raises(InputError, match="classical"):
        get_extractor("nope")


@pytest.mark.parametrize(("dx", "dy"), [(3.3, -5.7), (-13.62, 9.41), (0.0, 0.0)])
def test_match_recovers_subpixel_shift_between_sar_and_clean_sar(dx: float, dy: float) -> None:
    pair = generate_scene_pair(160, 160, seed=4)
    ref = pair.sigma0_aligned.astype(np.float64)
    inp = _shift(pair.sar.astype(np.float64), -dx, -dy)  # INPUT content must move by (+dx, +dy)
    m = 20
    tpl = inp[m:-m, m:-m]
    fe = OrientedGradientFeatures()
    res = match(fe(tpl, np.ones(tpl.shape, bool)), fe(ref, np.ones(ref.shape, bool)), m)
    assert abs(res.dx - dx) < 0.25 and abs(res.dy - dy) < 0.25
    assert res.reliability > 1.2 and not res.at_limit


def test_match_flags_a_shift_beyond_the_search_range() -> None:
    pair = generate_scene_pair(128, 128, seed=2)
    m = 6
    ref = pair.sigma0_aligned
    inp = _shift(ref.astype(np.float64), -15.0, 0.0)
    tpl = inp[m:-m, m:-m]
    fe = OrientedGradientFeatures()
    res = match(fe(tpl, np.ones(tpl.shape, bool)), fe(ref, np.ones(ref.shape, bool)), m)
    assert res.at_limit


def test_coarse_levels() -> None:
    assert coarse_levels_for(8) == 0 and coarse_levels_for(32) == 1 and coarse_levels_for(100) == 3


def test_large_search_radius_coarse_to_fine_recovers_the_shift() -> None:
    pair = generate_scene_pair(320, 320, seed=6)
    ref = pair.sigma0_aligned.astype(np.float64)
    dx, dy = -57.3, 41.6
    inp = _shift(ref, -dx, -dy)
    m = 90
    tpl = inp[m:-m, m:-m]  # 140 px template searched over +-90 px (coarse to fine)
    fe = OrientedGradientFeatures()
    res = match(fe(tpl, np.ones(tpl.shape, bool)), fe(ref, np.ones(ref.shape, bool)), m)
    assert abs(res.dx - dx) < 0.3 and abs(res.dy - dy) < 0.3


def test_explicit_levels_too_deep_for_the_search_radius_fall_back_to_one_level() -> None:
    """``levels`` whose pooling factor equals the radius leaves no margin for the fine window (it started
    at a negative index and the search failed); the search is then done at full resolution."""
    pair = generate_scene_pair(128, 128, seed=6)
    ref = pair.sigma0_aligned.astype(np.float64)
    dx, dy = 2.4, -1.7
    inp = _shift(ref, -dx, -dy)
    m = 4
    tpl = inp[m:-m, m:-m]
    fe = OrientedGradientFeatures()
    res = match(fe(tpl, np.ones(tpl.shape, bool)), fe(ref, np.ones(ref.shape, bool)), m, levels=2)
    assert abs(res.dx - dx) < 0.3 and abs(res.dy - dy) < 0.3
