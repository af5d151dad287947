"""A product georeferenced by GCPs only (shaped like a Sentinel-1 GRD) keeps its GCPs and their CRS
through every algorithm that writes a raster from it; the algorithms that need a geotransform say how
to get one."""

from __future__ import annotations

from pathlib import Path

from engine.raster_io import inspect_raster
from tests.conftest import assert_same_georeferencing
from tests.engine.tiny_translation import build_tiny_translation


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
