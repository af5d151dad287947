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
from engine.registration.outputs import write_corrected_raster
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
