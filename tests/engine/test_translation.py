"""engine.translation: values through tiling and blending, georeferencing, nodata, tags, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import CancelledError, InputError, ModelError, UnsupportedDataError
from engine.metadata import Task
from engine.translation import translate, translate_array
from tests.conftest import write_test_geotiff
from tests.engine.tiny_translation import TILE, build_tiny_translation, expected_display

NODATA = -9999.0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_translation(tmp_path_factory.mktemp("models") / "tiny.onnx")


def _intensity(shape: tuple[int, int], seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).gamma(2.0, 0.05, size=shape).astype(np.float32)


def test_array_values_match_the_model_through_tiles(tiny_model: Path) -> None:
    sar = _intensity((70, 90))  # several 32 px tiles with overlap: blending must reproduce the values
    sar[5, 5] = 0.0  # invalid -> NaN
    rgb = translate_array(sar, tiny_model)
    assert rgb.shape == (3, 70, 90)
    assert np.isnan(rgb[:, 5, 5]).all()
    valid = np.isfinite(rgb[0])
    np.testing.assert_allclose(rgb[:, valid], expected_display(sar)[:, valid], atol=1e-5)


def test_file_output_georeferenced_uint8_with_nodata_and_tags(tmp_path: Path, tiny_model: Path) -> None:
    import rasterio

    sar = _intensity((50, 61))
    sar[:3, :4] = NODATA
    src = write_test_geotiff(tmp_path / "sar.tif", sar[np.newaxis], nodata=NODATA)
    out = tmp_path / "out" / "rgb.tif"
    out.parent.mkdir()
    res = translate(src, out, model=tiny_model)
    assert res.valid_pixels == sar.size - 12 and res.model_id == "tiny-translation"
    with rasterio.open(out) as ds, rasterio.open(src) as s:
        assert ds.count == 3 and ds.dtypes == ("uint8",) * 3 and ds.nodata == 0
        assert ds.crs == s.crs and ds.transform == s.transform and ds.shape == s.shape
        tags = ds.tags()
        data = ds.read()
    assert (
        tags["SAR_TOOLBOX_SYNTHETIC_IMAGERY"] == "true" and tags["SAR_TOOLBOX_MODEL_ID"] == "tiny-translation"
    )
    assert "not a measurement" in tags["SAR_TOOLBOX_DESCRIPTION"]
    assert (data[:, :3, :4] == 0).all() and (data[:, 3:, :] > 0).all()
    want = np.clip(np.rint(expected_display(sar) * 255), 1, 255)
    assert np.abs(data[:, 3:].astype(float) - want[:, 3:]).max() <= 1
    assert list(out.parent.iterdir()) == [out]


def test_input_smaller_than_one_tile_is_padded(tiny_model: Path) -> None:
    sar = _intensity((TILE // 2 - 3, 7))
    rgb = translate_array(sar, tiny_model)
    np.testing.assert_allclose(rgb, expected_display(sar), atol=1e-5)


def test_db_input_kind(tmp_path: Path, tiny_model: Path) -> None:
    sar = _intensity((40, 40))
    db = 10 * np.log10(sar)
    np.testing.assert_allclose(
        translate_array(db, tiny_model, input_kind="db"), expected_display(sar), atol=1e-5
    )


# ----------------------------------------------------------------- bad inputs: clear error, nothing written
def _assert_nothing_written(folder: Path) -> None:
    assert list(folder.iterdir()) == []


def test_multiband_without_band_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    src = write_test_geotiff(tmp_path / "two.tif", np.stack([_intensity((20, 20)), _intensity((20, 20), 4)]))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match="2 bands; choose the SAR band"):
        translate(src, out / "rgb.tif", model=tiny_model)
    _assert_nothing_written(out)
    translate(src, out / "rgb.tif", band=2, model=tiny_model)  # with BAND it works


def test_complex_slc_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    slc = (_intensity((16, 16)) + 1j * _intensity((16, 16), 5)).astype(np.complex64)
    src = write_test_geotiff(tmp_path / "slc.tif", slc[np.newaxis])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsupportedDataError, match="complex"):
        translate(src, out / "rgb.tif", model=tiny_model)
    _assert_nothing_written(out)


def test_model_of_another_task_is_refused(tmp_path: Path) -> None:
    wrong = build_tiny_translation(tmp_path / "embed.onnx", task=Task.EMBED)
    src = write_test_geotiff(tmp_path / "sar.tif", _intensity((20, 20))[np.newaxis])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ModelError, match=r"'embed' model.*needs a 'translate' model"):
        translate(src, out / "rgb.tif", model=wrong)
    _assert_nothing_written(out)


def test_all_nodata_input_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    src = write_test_geotiff(
        tmp_path / "empty.tif", np.full((1, 40, 40), NODATA, dtype=np.float32), nodata=NODATA
    )
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match="no valid pixel"):
        translate(src, out / "rgb.tif", model=tiny_model)
    _assert_nothing_written(out)


def test_cancel_leaves_nothing(tmp_path: Path, tiny_model: Path) -> None:
    src = write_test_geotiff(tmp_path / "sar.tif", _intensity((100, 100))[np.newaxis])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CancelledError):
        translate(src, out / "rgb.tif", model=tiny_model, is_cancelled=lambda: True)
    _assert_nothing_written(out)
