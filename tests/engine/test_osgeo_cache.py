"""The system GDAL's block cache is bounded while co-registration copies or warps a whole raster.

``osgeo`` is a GDAL library apart from rasterio's (its wheel bundles its own), so ``raster_env`` does
not reach it; its default cache is 5 % of the machine's memory, which a whole-raster copy filled
(871 MB peak for a 10,000 x 10,000 float32 copy, 199 MB with the bound: docs/BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def test_osgeo_cache_lowers_the_limit_and_restores_it() -> None:
    from osgeo import gdal

    from engine.raster_io import GDAL_CACHE_BYTES, osgeo_cache

    before = gdal.GetCacheMax()
    with osgeo_cache(gdal):
        assert gdal.GetCacheMax() == min(before, GDAL_CACHE_BYTES)
    assert gdal.GetCacheMax() == before
    gdal.SetCacheMax(1024 * 1024)
    try:
        with osgeo_cache(gdal):  # never raised above what the application chose
            assert gdal.GetCacheMax() == 1024 * 1024
    finally:
        gdal.SetCacheMax(before)


@pytest.mark.parametrize("resample", [False, True])
def test_corrected_raster_is_written_under_the_bounded_cache(
    resample: bool, make_geotiff: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from osgeo import gdal

    from engine.raster_io import GDAL_CACHE_BYTES, inspect_raster
    from engine.registration.outputs import write_corrected_raster
    from engine.registration.transforms import fit_transform

    original_limit = gdal.GetCacheMax()
    gdal.SetCacheMax(2 * GDAL_CACHE_BYTES)  # as large as a machine with 5 GB of memory gets by default
    seen: list[int] = []
    for name in ("Translate", "Warp"):
        original = getattr(gdal, name)

        def spy(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(gdal.GetCacheMax())
            return _original(*args, **kwargs)

        monkeypatch.setattr(gdal, name, spy)
    info = inspect_raster(make_geotiff(height=64, width=64))
    points = np.array([[600000.0, 5000000.0], [600300.0, 4999700.0]])
    shift = fit_transform(points, points + np.array([10.0, -5.0]), "shift")
    try:
        write_corrected_raster(tmp_path / "c.tif", info, shift, resample)
        assert gdal.GetCacheMax() == 2 * GDAL_CACHE_BYTES
    finally:
        gdal.SetCacheMax(original_limit)
    assert seen and max(seen) <= GDAL_CACHE_BYTES
