"""Linear <-> dB conversion of a raster band (sartoolbox:todb)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.errors import CancelledError, InputError, RasterIOError, UnsupportedDataError
from engine.radiometry import convert
from engine.radiometry.convert import convert_db
from engine.raster_io import OUTPUT_NODATA, inspect_raster, read_window
from engine.tiling import Window
from tests.conftest import write_test_geotiff


def read_all(path: Path, band: int = 1) -> np.ndarray:
    info = inspect_raster(path)
    return read_window(path, band, Window(0, 0, info.height, info.width), dtype=np.float64)


@pytest.fixture
def small_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several strips on a tiny raster, so strip boundaries are exercised."""
    monkeypatch.setattr(convert, "STRIP_ROWS", 7)


def test_intensity_to_db_keeps_georeferencing_and_masks(
    make_geotiff: Callable[..., Path], tmp_path: Path, small_strips: None
) -> None:
    src = make_geotiff(height=30, width=22, bands=2, nodata=-1.0, holes=0.1, descriptions=("VV", "VH"))
    values: list[float] = []
    result = convert_db(src, tmp_path / "db.tif", band=2, progress=values.append)
    out = read_all(tmp_path / "db.tif")
    raw = read_all(src, band=2)
    valid = raw > 0
    np.testing.assert_allclose(out[valid], np.maximum(10 * np.log10(raw[valid]), -40.0), atol=1e-4)
    assert (out[~valid] == OUTPUT_NODATA).all()
    a, b = inspect_raster(src), inspect_raster(tmp_path / "db.tif")
    assert (b.crs_wkt, b.transform, b.shape, b.count) == (a.crs_wkt, a.transform, a.shape, 1)
    assert b.nodata == OUTPUT_NODATA and b.dtypes == ("float32",)
    assert b.descriptions == ("VH (intensity [dB])",)
    assert result.valid_pixels == int(valid.sum()) and result.nodata_pixels == int((~valid).sum())
    assert result.minimum == pytest.approx(out[valid].min()) and values[-1] == 100.0


def test_zero_negative_nan_inf_become_nodata(tmp_path: Path) -> None:
    data = np.array([[1.0, 0.0, -2.0], [np.nan, np.inf, 1e-6]], dtype=np.float32)
    src = write_test_geotiff(tmp_path / "in.tif", data, nodata=None)
    convert_db(src, tmp_path / "db.tif", noise_floor_db=-35.0)
    out = read_all(tmp_path / "db.tif")
    np.testing.assert_allclose(out, [[0.0, OUTPUT_NODATA, OUTPUT_NODATA],
                                     [OUTPUT_NODATA, OUTPUT_NODATA, -35.0]], atol=1e-5)


def test_amplitude_and_inverse_round_trip(make_geotiff: Callable[..., Path], tmp_path: Path,
                                          small_strips: None) -> None:
    src = make_geotiff(height=16, width=9, nodata=-1.0)
    raw = read_all(src)
    convert_db(src, tmp_path / "db.tif", input_kind="amplitude", noise_floor_db=-200.0)
    db = read_all(tmp_path / "db.tif")
    valid = raw > 0
    np.testing.assert_allclose(db[valid], 20 * np.log10(raw[valid]), atol=1e-4)
    convert_db(tmp_path / "db.tif", tmp_path / "lin.tif", input_kind="amplitude", inverse=True)
    back = read_all(tmp_path / "lin.tif")
    np.testing.assert_allclose(back[valid], raw[valid], rtol=1e-5)
    assert (back[~valid] == OUTPUT_NODATA).all()


def test_all_nodata_input_writes_nothing(tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "in.tif", np.zeros((5, 6), np.float32), nodata=0.0)
    with pytest.raises(InputError, match="no valid pixel"):
        convert_db(src, tmp_path / "o.tif")
    assert [p.name for p in tmp_path.iterdir()] == ["in.tif"]


def test_complex_input_says_how_to_convert(tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "slc.tif", np.ones((4, 4), np.complex64))
    with pytest.raises(UnsupportedDataError, match=r"not supported yet.*\|z\|\^2.*gdal_translate"):
        convert_db(src, tmp_path / "o.tif")
    assert [p.name for p in tmp_path.iterdir()] == ["slc.tif"]


def test_bad_parameters_and_paths(make_geotiff: Callable[..., Path], tmp_path: Path) -> None:
    src = make_geotiff()
    with pytest.raises(InputError, match="intensity"):
        convert_db(src, tmp_path / "o.tif", input_kind="db")
    with pytest.raises(InputError, match="Band 3"):
        convert_db(src, tmp_path / "o.tif", band=3)
    with pytest.raises(InputError, match="does not exist"):
        convert_db(tmp_path / "none.tif", tmp_path / "o.tif")
    with pytest.raises(RasterIOError, match="not a folder"):
        convert_db(src, src / "o.tif")
    assert [p.name for p in tmp_path.iterdir()] == ["in.tif"]


def test_cancellation_leaves_no_file(make_geotiff: Callable[..., Path], tmp_path: Path,
                                     small_strips: None) -> None:
    src = make_geotiff(height=40)
    calls = iter(range(100))
    messages: list[str] = []
    with pytest.raises(CancelledError):
        convert_db(src, tmp_path / "o.tif", is_cancelled=lambda: next(calls) >= 3, log=messages.append)
    assert messages and [p.name for p in tmp_path.iterdir()] == ["in.tif"]
