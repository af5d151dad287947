"""Put the reference on the input's pixel grid and check that the pair can be registered.

The search works in the INPUT's pixel grid. When the reference has another
CRS, pixel size or origin it is read through a rasterio ``WarpedVRT`` onto that
grid (bilinear), window by window, so memory does not grow with the scene.
Rasters without a CRS are accepted only in pairs (both without one): they are
then taken to share one local frame given by their geotransforms. A raster
without any geotransform (a plain PNG or JPEG) is placed as QGIS displays it:
pixel (0, 0) at the origin, one unit per pixel, rows going down (negative y),
so that every output lands where QGIS shows the input.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..raster_io import RasterInfo, inspect_raster, open_raster, raster_env, read_bands, read_window
from ..tiling import Window

logger = logging.getLogger(__name__)

MIN_OVERLAP = 32
"""Smallest overlap (pixels per side) worth searching."""

PLACEHOLDER_CRS = "EPSG:3857"
"""Stand-in CRS given to two CRS-less rasters so GDAL can resample between their grids."""


METRES_PER_DEGREE = 111_320.0
"""Length of one degree of latitude (and of longitude at the equator), metres (for pixel sizes only)."""


def band_list(info: RasterInfo, bands: int | Sequence[int] | None) -> list[int]:
    """Bands averaged into the single image that is matched (default: RGB -> mean of the first three)."""
    if bands is not None:
        chosen = [bands] if isinstance(bands, int) else list(bands)
        if chosen:
            info.check(chosen)
            return chosen
    return [1, 2, 3] if info.count >= 3 else [1]


def _has_geotransform(path: str) -> bool:
    from osgeo import gdal

    try:
        ds = gdal.Open(path)
    except RuntimeError:
        return True  # rasterio opened it: keep rasterio's view of it
    return ds is None or ds.GetGeoTransform(can_return_null=True) is not None


def display_frame(info: RasterInfo) -> RasterInfo:
    """``info`` placed as QGIS displays it: a raster without geotransform gets pixel height -1."""
    if info.crs_wkt or _has_geotransform(info.path):
        return info
    from affine import Affine

    return replace(info, transform=Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0))


def inspect_in_display_frame(path: str | os.PathLike[str]) -> RasterInfo:
    """:func:`engine.raster_io.inspect_raster`, then :func:`display_frame`."""
    return display_frame(inspect_raster(path))


def pixel_size_m(info: RasterInfo) -> float | None:
    """The smaller side of a pixel in metres (degrees converted at the scene's latitude); None without CRS."""
    if not info.crs_wkt:
        return None
    from rasterio.crs import CRS

    g = info.transform
    sx, sy = math.hypot(g.a, g.d), math.hypot(g.b, g.e)
    crs = CRS.from_wkt(info.crs_wkt)
    if crs.is_geographic:
        _, lat = g * (info.width / 2, info.height / 2)
        return min(sx * METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 1e-6), sy * METRES_PER_DEGREE)
    try:
        factor = float(crs.linear_units_factor[1])
    except Exception:  # CRS without linear units: take map units as metres
        factor = 1.0
    return min(sx, sy) * factor


@dataclass(frozen=True)
class PairGeometry:
    """How the reference relates to the input's grid."""

    input: RasterInfo
    reference: RasterInfo
    same_grid: bool  # reference pixels coincide with input pixels (pure integer offset)
    offset: tuple[int, int]  # (col, row) of input pixel (0, 0) in the reference, when same_grid
    overlap: Window  # part of the input grid covered by the reference
    reference_extent: Window  # where reference pixels can be read, in input pixel coordinates


def _grids_aligned(a: RasterInfo, b: RasterInfo) -> tuple[bool, tuple[int, int]]:
    ta, tb = a.transform, b.transform
    if not np.allclose([ta.a, ta.b, ta.d, ta.e], [tb.a, tb.b, tb.d, tb.e], rtol=1e-9, atol=0):
        return False, (0, 0)
    col, row = ~tb * (ta.c, ta.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return False, (0, 0)
    return True, (round(col), round(row))


def _footprint_in_input(inp: RasterInfo, ref: RasterInfo) -> Window:
    from rasterio.crs import CRS
    from rasterio.warp import transform as warp_transform

    w, h = ref.width, ref.height
    xs, ys = [], []
    for c in np.linspace(0, w, 9):
        for r in np.linspace(0, h, 9):
            x, y = ref.transform * (c, r)
            xs.append(x)
            ys.append(y)
    if inp.crs_wkt and ref.crs_wkt and CRS.from_wkt(inp.crs_wkt) != CRS.from_wkt(ref.crs_wkt):
        with raster_env():
            xs, ys = warp_transform(CRS.from_wkt(ref.crs_wkt), CRS.from_wkt(inp.crs_wkt), xs, ys)
    inv = ~inp.transform
    cols, rows = zip(*(inv * (x, y) for x, y in zip(xs, ys, strict=True)), strict=True)
    c0, c1 = max(0, int(np.ceil(min(cols) - 1e-6))), min(inp.width, int(np.floor(max(cols) + 1e-6)))
    r0, r1 = max(0, int(np.ceil(min(rows) - 1e-6))), min(inp.height, int(np.floor(max(rows) + 1e-6)))
    return Window(r0, c0, max(0, r1 - r0), max(0, c1 - c0))


def _utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone of a point."""
    zone = min(max(int((lon + 180.0) // 6.0) + 1, 1), 60)
    return (32600 if lat >= 0 else 32700) + zone


def crs_equal(a: str | None, b: str | None) -> bool:
    """Whether two CRS WKTs (or their absence) name the same CRS."""
    if not a or not b:
        return not a and not b
    from rasterio.crs import CRS

    return bool(CRS.from_wkt(a) == CRS.from_wkt(b))


def _target_crs(info: RasterInfo) -> str:
    """A map CRS to warp a GCP- or RPC-georeferenced raster onto: the UTM zone of its centre."""
    from rasterio.crs import CRS

    control = info.control
    if control.gcps:
        crs = CRS.from_wkt(control.gcp_crs_wkt) if control.gcp_crs_wkt else None
        if crs is not None and not crs.is_geographic:
            return crs.to_string()
        lon, lat = np.mean([[p.x, p.y] for p in control.gcps], axis=0)
    else:
        rpcs = dict(control.rpcs)
        lon, lat = float(rpcs.get("LONG_OFF", 0.0)), float(rpcs.get("LAT_OFF", 0.0))
    return f"EPSG:{_utm_epsg(float(lon), float(lat))}"


def require_grid(info: RasterInfo, role: str, tool: str, keypoints: bool = True) -> None:
    """Raise :class:`InputError` when ``info`` is georeferenced by GCPs, or by RPCs without a
    geotransform, alone: ``tool`` works on a map grid. The message gives the ``gdalwarp`` command that
    makes one (and, with ``keypoints``, names the tool that registers pixel grids)."""
    from affine import Affine

    control = info.control
    rpc_only = bool(control.rpcs) and info.transform == Affine.identity()
    if not (control.gcps or rpc_only):
        return
    how = (f"{len(control.gcps)} ground control points (GCPs) only, without a geotransform (as a Sentinel-1 "
           "GRD)" if control.gcps else "RPCs only, without a geotransform")
    rpc = "-rpc " if not control.gcps else ""
    warped = Path(info.path).with_name(f"{Path(info.path).stem}_warped.tif")
    other = (" Or register its pixels directly with 'sartoolbox:keypointregister', which takes such a raster."
             if keypoints else "")
    points = "GCPs" if control.gcps else "RPCs"
    raise InputError(
        f"The {role} raster '{info.path}' is georeferenced by {how}, and {tool} works on a map grid. Warp it "
        f"onto one with its {points} first, e.g. 'gdalwarp {rpc}-r bilinear -t_srs {_target_crs(info)} "
        f"\"{info.path}\" \"{warped}\"' (or Raster > Projections > Warp (Reproject) in QGIS), then run "
        f"{tool} on the warped raster.{other}"
    )


def check_pair(input_path: str, reference_path: str) -> PairGeometry:
    """Inspect both rasters; raise :class:`InputError` if they cannot be registered."""
    inp = inspect_in_display_frame(input_path)
    ref = inspect_in_display_frame(reference_path)
    require_grid(inp, "input", "shift co-registration")
    require_grid(ref, "reference", "shift co-registration")
    if bool(inp.crs_wkt) != bool(ref.crs_wkt):
        has, lacks = (inp, ref) if inp.crs_wkt else (ref, inp)
        role = "input" if lacks is inp else "reference"
        raise InputError(
            f"The {role} raster '{lacks.path}' has no CRS while '{has.path}' has one, so they cannot be "
            f"compared on the ground; assign the {role} its CRS (Raster > Projections > Assign Projection, "
            "or 'gdal_edit.py -a_srs') or use two rasters without georeferencing."
        )
    same, offset = _grids_aligned(inp, ref)
    if inp.crs_wkt and ref.crs_wkt:
        from rasterio.crs import CRS

        same = same and CRS.from_wkt(inp.crs_wkt) == CRS.from_wkt(ref.crs_wkt)
    if same:
        col, row = offset
        overlap = Window(0, 0, inp.height, inp.width).intersection(Window(-row, -col, ref.height, ref.width))
    else:
        overlap = _footprint_in_input(inp, ref)
    if overlap.height < MIN_OVERLAP or overlap.width < MIN_OVERLAP:
        raise InputError(
            f"The input '{inp.path}' and the reference '{ref.path}' do not overlap (common area "
            f"{overlap.width} x {overlap.height} input pixels, at least {MIN_OVERLAP} x {MIN_OVERLAP} "
            "needed); choose a reference that covers the input, or check both CRSs and geotransforms."
        )
    logger.info(
        "reference %s the input grid; overlap %d x %d pixels",
        "shares" if same else "is resampled onto",
        overlap.width,
        overlap.height,
    )
    extent = Window(-offset[1], -offset[0], ref.height, ref.width) if same else overlap
    return PairGeometry(inp, ref, same, offset, overlap, extent)


def _to_image(data: np.ndarray, nodata: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(bands, h, w) -> mean image (h, w) float32 and validity mask."""
    arr = data.astype(np.float32, copy=False)
    valid = np.isfinite(arr).all(axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(arr == nodata).all(axis=0)
    img = arr.mean(axis=0) if arr.shape[0] > 1 else arr[0]
    img = np.where(valid, img, 0.0).astype(np.float32)
    return img, valid


class PairReader:
    """Reads matching windows of the input and of the reference (on the input's grid)."""

    def __init__(
        self,
        geometry: PairGeometry,
        input_band: int | None = None,
        reference_bands: int | Sequence[int] | None = None,
    ) -> None:
        self.geometry = geometry
        self.input_bands = band_list(geometry.input, input_band)
        self.reference_bands = band_list(geometry.reference, reference_bands)
        self._inp: Any = None
        self._ref: Any = None
        self._vrt: Any = None

    @contextmanager
    def opened(self) -> Iterator[PairReader]:
        g = self.geometry
        with open_raster(g.input.path) as inp, open_raster(g.reference.path) as ref:
            self._inp, self._ref = inp, ref
            try:
                if g.same_grid:
                    yield self
                else:
                    from rasterio.enums import Resampling
                    from rasterio.vrt import WarpedVRT

                    kwargs: dict[str, Any] = {
                        "crs": g.input.crs_wkt or PLACEHOLDER_CRS,
                        "transform": g.input.transform,
                        "width": g.input.width,
                        "height": g.input.height,
                        "resampling": Resampling.bilinear,
                        "dtype": "float32",
                        "nodata": float("nan"),
                    }
                    if not g.reference.crs_wkt:
                        kwargs["src_crs"] = PLACEHOLDER_CRS
                        kwargs["src_transform"] = g.reference.transform
                    if g.reference.nodata is not None:
                        kwargs["src_nodata"] = g.reference.nodata
                    with WarpedVRT(ref, **kwargs) as vrt:
                        self._vrt = vrt
                        yield self
            finally:
                self._inp = self._ref = self._vrt = None

    def read_input(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        data = read_window(self._inp, self.input_bands, window, fill=np.nan)
        return _to_image(data, self.geometry.input.nodata)

    def read_reference(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        g = self.geometry
        if g.same_grid:
            col, row = g.offset
            win = Window(window.row_off + row, window.col_off + col, window.height, window.width)
            data = read_window(self._ref, self.reference_bands, win, fill=np.nan)
            return _to_image(data, g.reference.nodata)
        data = read_window(self._vrt, self.reference_bands, window, fill=np.nan)
        return _to_image(data, None)

    def read_preview(self, max_side: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Decimated input image and reference bands ``(k, h, w)``, NaN where invalid, on the input grid.

        Returns ``(input, reference_bands, factor)``; ``factor`` input pixels per preview pixel.
        """
        from rasterio.enums import Resampling

        g = self.geometry
        f = max(1.0, max(g.input.width, g.input.height) / max_side)
        shape = (max(1, int(g.input.height / f)), max(1, int(g.input.width / f)))
        a = read_bands(
            self._inp, self.input_bands, "a decimated preview",
            out_shape=(len(self.input_bands), *shape),
            resampling=Resampling.average,
            masked=False,
        ).astype(np.float32)
        ia, ok = _to_image(a, g.input.nodata)
        ia[~ok] = np.nan
        out_shape = (len(self.reference_bands), *shape)
        if g.same_grid:
            col, row = g.offset
            from rasterio.windows import Window as RWin

            b = read_bands(
                self._ref, self.reference_bands, "a decimated preview",
                out_shape=out_shape,
                window=RWin(col, row, g.input.width, g.input.height),
                boundless=True,
                fill_value=0 if g.reference.nodata is None else g.reference.nodata,
                resampling=Resampling.average,
            ).astype(np.float32)
        else:
            b = read_bands(self._vrt, self.reference_bands, "a decimated preview", out_shape=out_shape,
                           resampling=Resampling.average)
            b = b.astype(np.float32)
        _, ok = _to_image(b, g.reference.nodata if g.same_grid else None)
        b[:, ~ok] = np.nan
        return ia, b, f
