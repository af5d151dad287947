"""A product georeferenced by GCPs only (shaped like a Sentinel-1 GRD) keeps its GCPs and their CRS
through every algorithm that writes a raster from it; the algorithms that need a geotransform say how
to get one."""

from __future__ import annotations

from pathlib import Path

import rasterio

from engine.raster_io import ControlPoints, inspect_raster
from tests.engine.tiny_translation import build_tiny_translation


def assert_same_georeferencing(output: Path, source: Path) -> None:
    """``output`` has the GCPs, GCP CRS and RPCs of ``source`` and, like it, no geotransform."""
    with rasterio.open(output) as out, rasterio.open(source) as src:
        assert ControlPoints.of(out) == ControlPoints.of(src)
        assert ControlPoints.of(out).gcps, "the output lost the GCPs"
        assert out.gcps[1] == src.gcps[1]
        assert out.transform == src.transform and out.crs == src.crs  # identity / none, as the source


def test_todb_keeps_the_gcps(make_grd, tmp_path: Path) -> None:
    from engine.convert import convert_db

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
