"""GCPs and RPCs (georeferencing besides a geotransform) are read once and written on every output;
a failed read names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from benchmarks.common import GRD_GCP_GRID
from engine.errors import RasterIOError
from engine.raster_io import (
    ControlPoints,
    create_raster,
    inspect_raster,
    open_raster,
    profile_like,
    read_window,
    write_raster,
)
from engine.tiling import Window
from tests.conftest import truncate_file, write_test_geotiff


def _rpc_items() -> dict[str, str]:
    coeff = [1.0] + [0.0] * 19
    return rasterio.rpc.RPC(
        height_off=100.0, height_scale=500.0, lat_off=45.0, lat_scale=0.1, long_off=5.0, long_scale=0.1,
        line_off=50.0, line_scale=50.0, samp_off=60.0, samp_scale=60.0, line_den_coeff=coeff,
        line_num_coeff=[0.0, 0.0, -1.0] + [0.0] * 17, samp_den_coeff=coeff,
        samp_num_coeff=[0.0, 1.0] + [0.0] * 18).to_gdal()


def test_inspect_reads_the_gcps_of_a_grd(make_grd) -> None:
    info = inspect_raster(make_grd())
    assert len(info.control.gcps) == GRD_GCP_GRID ** 2
    assert rasterio.crs.CRS.from_wkt(info.control.gcp_crs_wkt).to_epsg() == 4326
    assert info.crs_wkt is None and info.transform == Affine.identity()
    assert info.descriptions == ("VV", "VH")
    assert info.control.gcps[0] == (0.0, 0.0, 5.0, 45.0, 120.0)


def test_a_raster_with_a_geotransform_has_no_control_points(make_geotiff) -> None:
    info = inspect_raster(make_geotiff())
    assert not info.control and info.control.to_json() == {}


def test_profile_like_writes_the_gcps_and_their_crs(make_grd, tmp_path: Path) -> None:
    info = inspect_raster(make_grd())
    out = tmp_path / "out.tif"
    with create_raster(out, profile_like(info)) as writer:
        writer.write(Window(0, 0, info.height, info.width), np.ones(info.shape, np.float32))
    with rasterio.open(out) as ds:
        gcps, crs = ds.gcps
        assert ds.transform == Affine.identity()
    assert crs.to_epsg() == 4326
    assert [(p.row, p.col, p.x, p.y, p.z) for p in gcps] == [tuple(p) for p in info.control.gcps]


def test_rpcs_are_read_and_written(tmp_path: Path) -> None:
    src = write_test_geotiff(tmp_path / "rpc.tif", np.ones((20, 30), np.float32), crs_wkt=None)
    with rasterio.open(src, "r+") as ds:
        ds.rpcs = rasterio.rpc.RPC.from_gdal(_rpc_items())
    info = inspect_raster(src)
    assert dict(info.control.rpcs)["LINE_OFF"] == "50.0"
    out = write_raster(tmp_path / "out.tif", np.zeros((20, 30), np.float32), None, info.transform,
                       control=info.control)
    with rasterio.open(out) as ds:
        assert ds.transform == info.transform
        assert ControlPoints.of(ds) == info.control


def test_control_points_survive_json() -> None:
    control = ControlPoints(((1.0, 2.0, 3.0, 4.0, 5.0),), "WKT", (("LINE_OFF", "1.0"),))
    assert ControlPoints.from_json(control.to_json()) == control


def test_a_truncated_file_read_says_which_file_and_what_to_do(make_geotiff, tmp_path: Path) -> None:
    path = truncate_file(make_geotiff(height=300, width=300, bands=2, holes=0.0))
    with open_raster(path) as src, pytest.raises(RasterIOError,
                                                match=r"Reading rows 0-300 of '.*in\.tif' failed"):
        read_window(src, 1, Window(0, 0, 300, 300))
