"""SAR preprocessing: masks, dB conversion, normalisation and their inverses."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.metadata import InputTransform, ModelMetadata, Normalisation, Task
from engine.preprocess import (
    db_to_linear,
    denormalise,
    linear_to_db,
    normalise,
    to_model_domain,
    to_model_input,
    valid_mask,
)
from tests.conftest import FAKE_SHA256


def meta(**changes: object) -> ModelMetadata:
    base = ModelMetadata(
        task=Task.TRANSLATE, model_id="m", weights_sha256=FAKE_SHA256, input_bands=1,
        input_transform=InputTransform.INTENSITY_TO_DB, normalisation=Normalisation.MINMAX,
        tile_size=32, overlap=8, db_min=-30.0, db_max=10.0, noise_floor_db=-40.0,
    )
    return base.with_updates(**changes)


RAW = np.array([0.01, 0.0, -1.0, np.nan, np.inf, -np.inf, 7.0, 1.0], dtype=np.float32)


def test_valid_mask_rejects_every_invalid_kind() -> None:
    mask = valid_mask(RAW, nodata=7.0)
    assert mask.tolist() == [True, False, False, False, False, False, False, True]


def test_valid_mask_allows_negative_values_when_not_linear() -> None:
    mask = valid_mask(RAW, nodata=None, positive=False)
    assert mask.tolist() == [True, True, True, False, False, False, True, True]


def test_valid_mask_with_nan_nodata_masks_only_non_finite() -> None:
    assert valid_mask(np.array([np.nan, 2.0]), nodata=float("nan")).tolist() == [False, True]


def test_valid_mask_refuses_complex_values() -> None:
    with pytest.raises(InputError, match="intensity"):
        valid_mask(np.ones(3, dtype=np.complex64), None)


def test_linear_to_db_intensity_and_amplitude_agree() -> None:
    intensity = np.array([1.0, 0.1, 0.01, 100.0])
    db_i = linear_to_db(intensity, "intensity")
    db_a = linear_to_db(np.sqrt(intensity), "amplitude")
    assert db_i.dtype == np.float32
    np.testing.assert_allclose(db_i, [0.0, -10.0, -20.0, 20.0], atol=1e-5)
    np.testing.assert_allclose(db_a, db_i, atol=1e-5)


def test_linear_to_db_floors_and_masks() -> None:
    db = linear_to_db(RAW, "intensity", noise_floor_db=-15.0)
    assert db[0] == pytest.approx(-15.0)  # 0.01 -> -20 dB, floored
    assert np.isnan(db[1:6]).all()
    assert db[7] == pytest.approx(0.0)


def test_db_to_linear_is_exact_inverse_above_floor() -> None:
    rng = np.random.default_rng(1)
    values = rng.uniform(1e-3, 1e2, 1000)
    for kind in ("intensity", "amplitude"):
        back = db_to_linear(linear_to_db(values, kind, noise_floor_db=-100.0), kind)
        np.testing.assert_allclose(back, values, rtol=1e-5)
    assert np.isnan(db_to_linear(np.array([np.nan, np.inf]), "intensity")).all()


def test_unknown_kind_says_what_to_use() -> None:
    with pytest.raises(InputError, match="intensity"):
        linear_to_db(np.ones(2), "power")
    with pytest.raises(InputError, match="amplitude"):
        db_to_linear(np.ones(2), "magnitude")


def test_minmax_normalise_clips_and_inverts() -> None:
    m = meta()
    x = normalise(np.array([-50.0, -30.0, -10.0, 10.0, 20.0]), m)
    np.testing.assert_allclose(x, [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(denormalise(x[1:4], m), [-30.0, -10.0, 10.0], atol=1e-5)


def test_standard_and_none_normalisation_invert() -> None:
    values = np.array([-20.0, -12.5, 3.0], dtype=np.float32)
    std = meta(normalisation=Normalisation.STANDARD, db_min=None, db_max=None, mean=-10.0, std=5.0)
    np.testing.assert_allclose(normalise(values, std), [-2.0, -0.5, 2.6], atol=1e-6)
    np.testing.assert_allclose(denormalise(normalise(values, std), std), values, atol=1e-5)
    none = meta(normalisation=Normalisation.NONE)
    np.testing.assert_array_equal(denormalise(normalise(values, none), none), values)


def test_to_model_input_masks_invalid_pixels_with_zero() -> None:
    x, valid = to_model_input(RAW, meta(), nodata=7.0)
    assert valid.tolist() == [True, False, False, False, False, False, False, True]
    assert (x[~valid] == 0).all()
    assert x[0] == pytest.approx((-20.0 + 30.0) / 40.0)
    assert x[7] == pytest.approx(30.0 / 40.0)


def test_to_model_input_amplitude_override_matches_intensity() -> None:
    intensity = np.array([0.5, 0.05], dtype=np.float32)
    x_i, _ = to_model_input(intensity, meta(), None)
    x_a, _ = to_model_input(np.sqrt(intensity), meta(), None, input_kind="amplitude")
    np.testing.assert_allclose(x_a, x_i, atol=1e-6)


def test_to_model_domain_db_input_is_floored_and_none_passes_through() -> None:
    values, valid = to_model_domain(np.array([-60.0, -5.0, np.nan]), meta(), None, input_kind="db")
    np.testing.assert_allclose(values[:2], [-40.0, -5.0])
    assert valid.tolist() == [True, True, False]
    raw = np.array([-3.0, 0.0, 2.0, -9999.0])
    passthrough, ok = to_model_domain(raw, meta(input_transform=InputTransform.NONE), -9999.0)
    np.testing.assert_array_equal(passthrough[:3], raw[:3])
    assert ok.tolist() == [True, True, True, False]


def test_to_model_input_rejects_unknown_input_kind() -> None:
    with pytest.raises(InputError, match="db"):
        to_model_input(np.ones(2), meta(), None, input_kind="sigma")


def test_minmax_normalise_needs_no_metadata_and_matches_normalise() -> None:
    from engine.preprocess import minmax_denormalise, minmax_normalise

    db = np.array([-50.0, -35.0, -10.0, 15.0, 20.0, np.nan], dtype=np.float32)
    x = minmax_normalise(db, -35.0, 15.0)
    np.testing.assert_array_equal(x[:5], [0.0, 0.0, 0.5, 1.0, 1.0])
    assert np.isnan(x[5]) and x.dtype == np.float32
    np.testing.assert_allclose(minmax_denormalise(x[:5], -35.0, 15.0), [-35.0, -35.0, -10.0, 15.0, 15.0])
