"""Raster I/O: inspection errors, boundless reads, georeferencing round trip, atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from engine.errors import DependencyError, InputError, RasterIOError, UnsupportedDataError
from engine.raster_io import (
    GDAL_CACHE_MB,
    OUTPUT_NODATA,
    RasterInfo,
    atomic_output,
    band_label,
    check_writable,
    create_raster,
    default_profile,
    inspect_raster,
    is_complex_dtype,
    open_raster,
    raster_env,
    read_window,
    write_raster,
)
from engine.tiling import Window
from tests.conftest import TEST_TRANSFORM, utm31_wkt, write_test_geotiff


def test_inspect_reports_georeferencing(make_geotiff: Callable[..., Path]) -> None:
    path = make_geotiff(height=12, width=20, bands=2, nodata=-1.0, descriptions=("VV", "VH"))
    info = inspect_raster(path, band=2)
    assert (info.height, info.width, info.count, info.shape) == (12, 20, 2, (12, 20))
    assert info.dtypes == ("float32", "float32") and info.dtype(1) == "float32"
    assert info.nodata == -1.0
    assert info.transform == Affine(*TEST_TRANSFORM)
    assert info.crs_wkt is not None and "UTM zone 31N" in info.crs_wkt
    assert info.descriptions == ("VV", "VH")
    assert not info.is_complex


def test_band_out_of_range(make_geotiff: Callable[..., Path]) -> None:
    path = make_geotiff(bands=2)
    for band in (0, 3):
        with pytest.raises(InputError, match="between 1 and 2"):
            inspect_raster(path, band=band)


@pytest.mark.parametrize("dtype", ["complex64", "complex_int16"])
def test_complex_input_is_refused_with_advice(tmp_path: Path, dtype: str) -> None:
    data = (np.ones((4, 5)) + 1j * np.ones((4, 5))).astype(np.complex64)
    if dtype == "complex_int16":
        from osgeo import gdal

        ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "slc.tif"), 5, 4, 1, gdal.GDT_CInt16)
        ds.SetGeoTransform(Affine(*TEST_TRANSFORM).to_gdal())
        ds.GetRasterBand(1).WriteArray(data)
        ds = None
        path = tmp_path / "slc.tif"
    else:
        path = write_test_geotiff(tmp_path / "slc.tif", data)
    with pytest.raises(UnsupportedDataError, match=r"not supported yet.*intensity"):
        inspect_raster(path, band=1)
    assert is_complex_dtype("complex_int16") and is_complex_dtype("CFloat32")
    assert not is_complex_dtype("int16")


def test_zero_size_raster_is_refused() -> None:
    # GDAL refuses to create a 0 x N GeoTIFF, so the check itself is tested.
    info = RasterInfo("empty.tif", 0, 10, 1, ("float32",), None, Affine.identity(), None, (None,))
    with pytest.raises(InputError, match="at least one pixel"):
        info.check([1])


def test_boundless_read_pads_with_fill(make_geotiff: Callable[..., Path]) -> None:
    path = make_geotiff(height=6, width=8, nodata=None, holes=0)
    with open_raster(path) as src:
        full = src.read(1)
        window = read_window(src, 1, Window(-2, 5, 5, 6), fill=-7.0)
        outside = read_window(src, [1], Window(100, 100, 2, 3), fill=0.5)
    assert window.shape == (5, 6)
    np.testing.assert_array_equal(window[2:, :3], full[0:3, 5:8])
    assert (window[:2] == -7).all() and (window[:, 3:] == -7).all()
    assert outside.shape == (1, 2, 3) and (outside == 0.5).all()
    by_path = read_window(path, 1, Window(0, 0, 6, 8))
    np.testing.assert_array_equal(by_path, full)


def test_georeferencing_round_trip(tmp_path: Path) -> None:
    import rasterio

    rng = np.random.default_rng(3)
    data = rng.random((2, 33, 47)).astype(np.float32)
    transform = Affine(2.5, 0.0, 431000.0, 0.0, -2.5, 4801000.0)
    out = write_raster(tmp_path / "out.tif", data, utm31_wkt(), transform, nodata=OUTPUT_NODATA,
                       descriptions=("sigma0 VV", "sigma0 VH"))
    info = inspect_raster(out)
    assert info.transform == transform
    assert info.nodata == OUTPUT_NODATA
    assert info.descriptions == ("sigma0 VV", "sigma0 VH")
    assert rasterio.crs.CRS.from_wkt(info.crs_wkt) == rasterio.crs.CRS.from_epsg(32631)
    with raster_env(), rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert src.profile["tiled"] and src.compression.name.lower() == "deflate"
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_default_profile_is_tiled_compressed_bigtiff_safe() -> None:
    profile = default_profile(100, 50, 3, "uint16", utm31_wkt(), Affine(*TEST_TRANSFORM), nodata=0)
    assert profile["tiled"] and profile["compress"] == "deflate" and profile["BIGTIFF"] == "IF_SAFER"
    assert profile["predictor"] == 2 and profile["count"] == 3 and profile["nodata"] == 0


def test_atomic_output_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "a.tif"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"done")
        assert not target.exists()
    assert target.read_bytes() == b"done"
    assert [p.name for p in tmp_path.iterdir()] == ["a.tif"]


def test_atomic_output_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "a.tif"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_keeps_previous_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "a.tif"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_bytes(b"new")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_unwritable_output_paths(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(RasterIOError, match="is a file, not a folder"):
        check_writable(blocker / "out.tif")
    with pytest.raises(RasterIOError, match="does not exist"):
        check_writable(tmp_path / "missing" / "out.tif")
    with pytest.raises(RasterIOError, match="is a folder"):
        check_writable(tmp_path)
    with pytest.raises(RasterIOError):
        write_raster(blocker / "out.tif", np.zeros((2, 2), np.float32), None, Affine.identity())
    assert check_writable(tmp_path / "ok.tif") == tmp_path / "ok.tif"


def test_strips_are_written_in_whole_blocks(tmp_path: Path) -> None:
    data = np.random.default_rng(5).random((2, 45, 37)).astype(np.float32)
    profile = default_profile(37, 45, 2, crs_wkt=utm31_wkt(), transform=Affine(*TEST_TRANSFORM), blocksize=16)
    written: list[Window] = []
    with atomic_output(tmp_path / "s.tif") as tmp, create_raster(tmp, profile) as writer:
        original = writer.write
        writer.write = lambda w, d: (written.append(w), original(w, d))  # type: ignore[method-assign]
        for row in range(0, 45, 7):
            writer.write_rows(row, data[:, row:row + 7])
        with pytest.raises(ValueError, match="in order"):
            writer.write_rows(3, data[:, :1])
    assert all(w.row_off % 16 == 0 for w in written)
    assert sum(w.height for w in written) == 45
    np.testing.assert_array_equal(read_window(tmp_path / "s.tif", [1, 2], Window(0, 0, 45, 37)), data)


def test_missing_rasterio_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.raises(DependencyError, match=r"-m pip install.*'rasterio>=1\.4,<1\.5'"):
        inspect_raster(tmp_path / "x.tif")



def _gdal_cache_max_bytes() -> int:
    """GDAL's block cache size as rasterio's own GDAL library sees it (not osgeo's, a different build)."""
    import ctypes
    import glob

    import rasterio

    libraries = glob.glob(str(Path(rasterio.__file__).parent.parent / "rasterio.libs" / "libgdal*"))
    if not libraries:
        pytest.skip("rasterio is not a wheel with its own libgdal; cannot read its cache size")
    gdal = ctypes.CDLL(libraries[0])
    gdal.GDALGetCacheMax64.restype = ctypes.c_int64
    return int(gdal.GDALGetCacheMax64())


def test_raster_env_gives_gdal_its_cache_in_megabytes_not_bytes() -> None:
    """rasterio hands an integer GDAL_CACHEMAX to GDAL as bytes: 128 was a 128-byte cache."""
    with raster_env():
        assert _gdal_cache_max_bytes() == GDAL_CACHE_MB * 1024 * 1024


def test_band_label_names_the_band_and_its_description() -> None:
    assert band_label(2, "VH") == "band 2 (VH)"
    assert band_label(1, None) == band_label(1, "") == "band 1"
    assert band_label(2, "vh", capitalised=True) == "Band 2 (vh)"  # the description as written
