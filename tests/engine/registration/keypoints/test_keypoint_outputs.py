"""engine.registration.keypoints.outputs: the INPUT on the REFERENCE grid, strip by strip, is the one
whole-grid resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from engine.raster_io import OUTPUT_NODATA, inspect_raster
from engine.registration.keypoints import outputs
from engine.registration.keypoints.warp import grid_sources
from engine.run import QUIET
from tests.conftest import write_test_geotiff


@pytest.mark.parametrize("resampling", ["nearest", "bilinear", "cubic"])
def test_strips_equal_one_whole_grid_resampling(resampling: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Strips of 16 rows (the cubic spline's coefficients computed once for the band) give the bytes of one
    ``map_coordinates`` call over the whole REFERENCE grid."""
    monkeypatch.setattr(outputs, "STRIP_ROWS", 16)
    rng = np.random.default_rng(7)
    data = rng.gamma(4.0, 0.01, (1, 48, 40)).astype(np.float32)
    inp = inspect_raster(write_test_geotiff(tmp_path / "in.tif", data, nodata=None))
    blank = np.zeros((1, 50, 45), np.float32)
    ref = inspect_raster(write_test_geotiff(tmp_path / "ref.tif", blank, nodata=None))
    h = np.array([[0.97, 0.06, 2.3], [-0.06, 0.97, 4.1], [0.0, 0.0, 1.0]])
    outputs.write_on_reference_grid(tmp_path / "out.tif", inp, ref, h, resampling, QUIET)
    with rasterio.open(tmp_path / "out.tif") as out:
        got = out.read(1)
    order = outputs.RESAMPLING_ORDER[resampling]
    coords = grid_sources(h, ref.height, ref.width)
    ok = ndimage.map_coordinates(np.ones(data.shape[1:], np.float32), coords, order=1, cval=0.0) > 0.999
    whole = ndimage.map_coordinates(data[0], coords, order=order, cval=0.0, mode="constant")
    expected = np.where(ok, whole, OUTPUT_NODATA).astype(np.float32).reshape(ref.height, ref.width)
    np.testing.assert_array_equal(got, expected)
    assert ok.any() and not ok.all()
