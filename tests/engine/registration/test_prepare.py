"""engine.registration.prepare: the one image preparation of both front ends, the engine and training."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.registration.prepare import prepare_image


def test_intensity_and_amplitude_give_the_same_result() -> None:
    rng = np.random.default_rng(0)
    intensity = rng.gamma(1.0, 1.0, (32, 40)).astype(np.float32) + 1e-3
    a = prepare_image(intensity, "intensity")
    b = prepare_image(np.sqrt(intensity), "amplitude")
    c = prepare_image(10 * np.log10(intensity), "db")
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, c, atol=1e-5)


def test_robust_zscore_values_and_range() -> None:
    x = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 100.0]], dtype=np.float32)
    out = prepare_image(x, "optical")
    # median 2.5, MAD 1.5 -> scale 1.4826 * 1.5
    scale = 1.4826 * 1.5
    expected = np.clip((x - 2.5) / scale, -4, 4) / 4
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.max() == pytest.approx(1.0)  # the outlier is clipped at 4 sigma
    assert out.dtype == np.float32


def test_invalid_pixels_are_zero_and_do_not_shift_the_statistics() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, (20, 20)).astype(np.float32)
    valid = np.ones_like(x, dtype=bool)
    valid[:5] = False
    poisoned = x.copy()
    poisoned[:5] = 1e6
    out = prepare_image(poisoned, "optical", valid)
    ref = prepare_image(x[5:], "optical")
    assert np.all(out[:5] == 0)
    np.testing.assert_allclose(out[5:], ref, atol=1e-6)


def test_nonpositive_linear_sar_is_invalid() -> None:
    x = np.full((4, 4), 2.0, dtype=np.float32)
    x[0, 0] = 0.0
    x[1, 1] = np.nan
    x[2, 2] = 5.0
    out = prepare_image(x, "intensity")
    assert out[0, 0] == 0 and out[1, 1] == 0
    assert out[2, 2] > 0


def test_all_invalid_and_constant_images() -> None:
    assert not prepare_image(np.zeros((8, 8)), "intensity").any()
    flat = prepare_image(np.full((8, 8), 3.0), "optical")
    assert np.all(flat == 0)


def test_bad_kind_and_shape() -> None:
    with pytest.raises(InputError, match="kind"):
        prepare_image(np.ones((4, 4)), "sigma0")
    with pytest.raises(InputError, match="2-D"):
        prepare_image(np.ones((2, 4, 4)), "optical")


def test_filled_output_logs_linear_sar_and_fills_invalid_pixels_with_the_median() -> None:
    """The shift front's kinds: no scaling; ``auto`` takes the log of heavy-tailed non-negative data only."""
    rng = np.random.default_rng(5)
    sar = rng.exponential(1.0, (32, 32)) ** 3  # heavy upper tail: linear SAR-like
    valid = np.ones(sar.shape, bool)
    valid[:4] = False
    auto = prepare_image(sar, "auto", valid)
    floor = np.percentile(sar[valid], 1)
    expected = np.log(np.maximum(sar[valid], floor)).astype(np.float32)
    np.testing.assert_allclose(auto[valid], expected, atol=1e-5)  # computed in float32
    assert np.all(auto[~valid] == np.median(auto[valid]))
    np.testing.assert_array_equal(prepare_image(sar, "auto", valid), prepare_image(sar, "log", valid))
    grey = rng.uniform(0, 255, (32, 32))  # display-stretched: kept as it is
    np.testing.assert_array_equal(prepare_image(grey, "auto", valid)[valid], grey[valid].astype(np.float32))
    np.testing.assert_array_equal(prepare_image(sar, "linear", valid)[valid], sar[valid].astype(np.float32))
