"""A product georeferenced by GCPs only (shaped like a Sentinel-1 GRD) keeps its GCPs and their CRS
through every algorithm that writes a raster from it; the algorithms that need a geotransform say how
to get one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from engine.raster_io import inspect_raster
from tests.conftest import assert_same_georeferencing
from tests.engine.tiny_translation import build_tiny_translation


def test_todb_keeps_the_gcps(make_grd, tmp_path: Path) -> None:
    from engine.radiometry.convert import convert_db

    grd = make_grd()
    convert_db(grd, tmp_path / "db.tif", band=2, input_kind="amplitude")
    assert_same_georeferencing(tmp_path / "db.tif", grd)


def test_translate_keeps_the_gcps(make_grd, tmp_path: Path) -> None:
    from engine.translation import translate

    grd = make_grd()
    model = build_tiny_translation(tmp_path / "tiny.onnx")
    translate(grd, tmp_path / "rgb.tif", band=1, input_kind="amplitude", model=model)
    assert_same_georeferencing(tmp_path / "rgb.tif", grd)
    assert inspect_raster(tmp_path / "rgb.tif").count == 3


WGS84 = CRS.from_epsg(4326).to_wkt()


# ------------------------------------------------------------------ algorithms that need a map grid
def _refusal(role: str, tool: str) -> str:
    return (rf"The {role} raster '.*grd\.tif' is georeferenced by 100 ground control points \(GCPs\) only, "
            rf"without a geotransform \(as a Sentinel-1 GRD\), and {tool} works on a map grid\. Warp it onto "
            r"one with its GCPs first, e\.g\. 'gdalwarp -r bilinear -t_srs EPSG:32631 \".*grd\.tif\" "
            r"\".*grd_warped\.tif\"'")


def test_coregister_says_to_warp_a_gcp_only_input_or_use_keypoints(make_grd, make_geotiff, tmp_path: Path
                                                                   ) -> None:
    from engine.errors import InputError
    from engine.registration.shift.api import coregister

    grd, grid = make_grd(), make_geotiff(height=96, width=128, name="grid.tif")
    out = tmp_path / "out"
    out.mkdir()
    for inp, ref, role in ((grd, grid, "input"), (grid, grd, "reference"), (grd, grd, "input")):
        with pytest.raises(InputError, match=_refusal(role, "shift co-registration")) as caught:
            coregister(inp, ref, output_path=out / "o.tif", report_path=out / "r.json")
        assert "sartoolbox:keypointregister" in str(caught.value) and "gdal_edit" not in str(caught.value)
    assert list(out.iterdir()) == []


def test_applytransform_says_to_warp_a_gcp_only_raster(make_grd, make_geotiff, tmp_path: Path) -> None:
    from engine.errors import InputError
    from engine.registration.shift.api import apply_transform, coregister

    grid = make_geotiff(height=96, width=96, holes=0.0, name="grid.tif")
    same = make_geotiff(height=96, width=96, holes=0.0, name="same.tif")
    report = tmp_path / "r.json"
    coregister(grid, same, method="classical", report_path=report)
    with pytest.raises(InputError, match=_refusal("input", "applying a co-registration")) as caught:
        apply_transform(report, make_grd(), tmp_path / "o.tif")
    assert "another CRS" not in str(caught.value) and "keypointregister" not in str(caught.value)
    assert not (tmp_path / "o.tif").exists()


def test_an_rpc_only_raster_is_told_to_warp_with_its_rpcs(tmp_path: Path) -> None:
    from engine.errors import InputError
    from engine.raster_io import ControlPoints, RasterInfo
    from engine.registration.georef import require_grid

    info = RasterInfo("l1a.tif", 10, 10, 1, ("uint16",), None, Affine.identity(), None, (None,),
                      ControlPoints(rpcs=(("LAT_OFF", "-33.9"), ("LONG_OFF", "18.4"))))
    with pytest.raises(InputError, match=r"by RPCs only.*'gdalwarp -rpc -r bilinear -t_srs EPSG:32734 "):
        require_grid(info, "input", "shift co-registration")


# ------------------------------------------------------------------ keypointregister: pixel grids
def _keypoint_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A textured reference and its 2x block mean as the input, both georeferenced by GCPs only
    (:func:`grd_gcps` of their own size: the two disagree on the ground, which keypoints ignore)."""
    from benchmarks.common import grd_gcps
    from tests.conftest import write_test_geotiff
    from tests.engine.registration.keypoints.test_keypoints import block_mean, texture

    ref = texture(256, seed=5)
    inp = block_mean(ref)
    return (write_test_geotiff(tmp_path / "input.tif", inp, crs_wkt=WGS84, gcps=grd_gcps(*inp.shape)),
            write_test_geotiff(tmp_path / "reference.tif", ref, crs_wkt=WGS84, gcps=grd_gcps(*ref.shape)))


def _points_file(path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """A Georeferencer file's CRS line, map x/y and input pixel x/y (y positive down)."""
    lines = path.read_text().splitlines()
    rows = np.array([[float(v) for v in line.split(",")[:4]] for line in lines[2:]])
    return lines[0], rows[:, :2], rows[:, 2:4] * [1.0, -1.0]


def _tiepoint_layer(path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """A tie-point GeoPackage's CRS, point positions and reference map positions."""
    from osgeo import ogr

    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    at, ref_at = [], []
    for feat in layer:
        geom = feat.GetGeometryRef()
        at.append((geom.GetX(), geom.GetY()))
        ref_at.append((feat.GetField("ref_map_x"), feat.GetField("ref_map_y")))
    return layer.GetSpatialRef().ExportToWkt(), np.array(at), np.array(ref_at)


def test_keypointregister_registers_gcp_only_rasters(tmp_path: Path) -> None:
    """Keypoint registration works on pixel grids, so it takes GCP-only rasters (on either side; here
    both, one run for both mechanisms): the corrected raster lies on the reference's grid with the
    reference's GCPs, the tie points are placed through the input's GCPs and the Georeferencer file's map
    coordinates through the reference's (in their CRS), not through a missing geotransform. (With a
    reference on a map grid, the unchanged geotransform path places them.)"""
    from engine.registration.keypoints.api import keypoint_register
    from engine.registration.transforms import corner_error

    inp, ref = _keypoint_pair(tmp_path)
    out = {"output_path": tmp_path / "o.tif", "tiepoints_path": tmp_path / "t.gpkg",
           "gcp_path": tmp_path / "g.points"}
    result = keypoint_register(inp, ref, transform="affine", **out)  # type: ignore[arg-type]
    reg = result.registration
    assert corner_error(reg.matrix, np.diag([2.0, 2.0, 1.0]), 128, 128) < 0.5
    assert_same_georeferencing(tmp_path / "o.tif", ref)
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert (ds.width, ds.height) == (256, 256)

    ref_info, inp_info = inspect_raster(ref), inspect_raster(inp)
    crs_line, map_xy, pixel_xy = _points_file(tmp_path / "g.points")
    assert CRS.from_wkt(crs_line.removeprefix("#CRS: ")) == CRS.from_wkt(ref_info.map_crs_wkt)
    np.testing.assert_allclose(pixel_xy, reg.src, atol=1e-9)
    np.testing.assert_allclose(map_xy, ref_info.pixel_to_map(reg.dst), rtol=1e-12)
    srs, at, ref_at = _tiepoint_layer(tmp_path / "t.gpkg")
    assert CRS.from_wkt(srs) == CRS.from_wkt(inp_info.map_crs_wkt)
    np.testing.assert_allclose(at, inp_info.pixel_to_map(reg.src), rtol=1e-12)
    np.testing.assert_allclose(ref_at, ref_info.pixel_to_map(reg.dst), rtol=1e-12)
    for info in (inp_info, ref_info):
        assert info.pixel_to_map(np.array([[0.0, 0.0]]))[0] == pytest.approx((5.0, 45.0))  # 1st GCP
    assert CRS.from_wkt(ref_info.map_crs_wkt).to_epsg() == 4326
