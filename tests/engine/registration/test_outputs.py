"""engine.registration.outputs: the corrected raster's writer checks before it works and leaves nothing
behind when GDAL fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from engine.errors import InputError, RasterIOError
from engine.raster_io import inspect_raster
from engine.registration.outputs import read_tiepoints_gpkg, write_corrected_raster, write_tiepoints_gpkg
from engine.registration.tiepoints import TiePoint
from engine.registration.transforms import Transform, fit_transform


def _vsimem_leftovers() -> list[str]:
    from osgeo import gdal

    return [n for n in (gdal.ReadDir("/vsimem/") or []) if n.startswith("sartoolbox_coreg_")]


def _shift(dx: float = 10.0, dy: float = -5.0) -> Transform:
    points = np.array([[600000.0, 5000000.0], [600300.0, 4999700.0]])
    return fit_transform(points, points + np.array([dx, dy]), "shift")


def test_a_rotated_raster_is_refused_before_gdal_runs(
    make_geotiff: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from osgeo import gdal

    info = inspect_raster(make_geotiff(height=32, width=32))
    rotated = replace(info, transform=Affine(10.0, 2.0, 600000.0, 2.0, -10.0, 5000000.0))
    calls: list[str] = []
    monkeypatch.setattr(gdal, "Translate", lambda *a, **k: calls.append("Translate"))
    with pytest.raises(InputError, match=r"rotated geotransform.*RESAMPLE=false"):
        write_corrected_raster(tmp_path / "c.tif", rotated, _shift(), resample=True)
    assert calls == [] and not (tmp_path / "c.tif").exists()


def test_a_failed_warp_leaves_no_virtual_file(
    make_geotiff: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from osgeo import gdal

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated write failure")

    info = inspect_raster(make_geotiff(height=32, width=32))
    monkeypatch.setattr(gdal, "Warp", fail)
    with pytest.raises(RasterIOError, match="simulated write failure"):
        write_corrected_raster(tmp_path / "c.tif", info, _shift(), resample=True)
    assert _vsimem_leftovers() == []


def test_a_used_tie_point_without_reference_position_is_refused(
    make_geotiff: Callable[..., Path], tmp_path: Path
) -> None:
    """A tie-point layer edited in QGIS (a used point's ref_map_x cleared) is refused with the point named,
    not read as NaN and fitted into a NaN geotransform."""
    from osgeo import ogr

    info = inspect_raster(make_geotiff(height=32, width=32))
    points = [TiePoint(4.0 + 8 * i, 6.0 + 5 * i, 1.5, -0.5, 0.9, 3.0, False) for i in range(4)]
    path = tmp_path / "tp.gpkg"
    write_tiepoints_gpkg(path, points, np.ones(4, bool), np.zeros(4), info)
    src, dst, _ = read_tiepoints_gpkg(str(path))
    assert src.shape == dst.shape == (4, 2) and np.isfinite(dst).all()
    ds = ogr.Open(str(path), 1)
    layer = ds.GetLayer(0)
    feat = layer.GetNextFeature()
    feat.SetFieldNull("ref_map_x")
    layer.SetFeature(feat)
    fid = feat.GetFID()
    ds = None
    with pytest.raises(InputError, match=rf"Tie point {fid} .*'used' field to 0"):
        read_tiepoints_gpkg(str(path))


def test_tie_points_whose_reference_positions_are_in_another_crs_are_refused(
    make_geotiff: Callable[..., Path], tmp_path: Path
) -> None:
    """keypointregister's layer: geometry in the INPUT's CRS, ref_map_x/y on the REFERENCE's grid. Read
    back for applytransform, two CRSs are refused (they were fitted as one); one CRS reads as before."""
    from rasterio.crs import CRS

    info = inspect_raster(make_geotiff(height=32, width=32))
    points = [TiePoint(4.0 + 8 * i, 6.0 + 5 * i, 1.5, -0.5, 0.9, 3.0, False) for i in range(4)]
    same, other = tmp_path / "same.gpkg", tmp_path / "other.gpkg"
    write_tiepoints_gpkg(same, points, np.ones(4, bool), np.zeros(4), info, reference=info)
    assert read_tiepoints_gpkg(str(same))[0].shape == (4, 2)
    geographic = replace(info, crs_wkt=CRS.from_epsg(4326).to_wkt())
    write_tiepoints_gpkg(other, points, np.ones(4, bool), np.zeros(4), info, reference=geographic)
    with pytest.raises(InputError, match="keypointregister's OUTPUT"):
        read_tiepoints_gpkg(str(other))
