"""Co-registration outputs: corrected raster, tie points (GeoPackage), QGIS ``.points``, report, figure.

Every writer takes the final path's temporary twin (see
:func:`engine.raster_io.atomic_output`); the caller renames all of them only
when everything succeeded.

Coordinates: tie points are in INPUT pixel-corner coordinates (pixel ``(c, r)``
has its centre at ``(c + 0.5, r + 0.5)``), as GDAL geotransforms and GCPs use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DependencyError, InputError, RasterIOError, check_choice
from ..raster_io import OUTPUT_NODATA, UNREADABLE, RasterInfo, osgeo_cache, osgeo_thread_options
from ..run import QUIET, Run
from .georef import crs_equal
from .tiepoints import TiePoint
from .transforms import Transform, degree_of, fit_transform

logger = logging.getLogger(__name__)

RESAMPLING = ("nearest", "bilinear", "cubic", "lanczos", "cubicspline", "average")
"""GDAL resampling methods of corrected rasters (the QGIS dialogs list them in this order)."""
GCP_GRID = 12
"""GCPs per side handed to GDAL to warp with a polynomial (sampled from the fitted transform)."""
READ_IN_THIS_THREAD = {"GDAL_NUM_THREADS": "1"}
"""GDAL options while it copies or warps: with ``GDAL_NUM_THREADS`` set (the user's environment, a QGIS
setting), GDAL decodes blocks in worker threads, where a failed read (a truncated input) is not raised:
the corrected raster came out all nodata, with no error."""


def _gdal() -> Any:
    try:
        from osgeo import gdal
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyError("GDAL (osgeo)", "Writing co-registration outputs") from exc
    gdal.UseExceptions()
    return gdal


def affine_to_matrix(gt: Any) -> np.ndarray:
    """rasterio ``Affine`` -> 3x3 matrix (pixel-corner -> map)."""
    return np.array([[gt.a, gt.b, gt.c], [gt.d, gt.e, gt.f], [0.0, 0.0, 1.0]], dtype=np.float64)


def matrix_to_gdal(m: np.ndarray) -> tuple[float, ...]:
    return (float(m[0, 2]), float(m[0, 0]), float(m[0, 1]), float(m[1, 2]), float(m[1, 0]), float(m[1, 1]))


def _apply(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    xy = np.atleast_2d(xy)
    return xy @ m[:2, :2].T + m[:2, 2]


def _sample_grid(width: float, height: float, n: int = GCP_GRID) -> np.ndarray:
    xs, ys = np.meshgrid(np.linspace(0, width, n), np.linspace(0, height, n))
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def pixel_to_map_transform(t: Transform, gt: Any, width: int, height: int) -> Transform:
    """The pixel-space transform ``t`` of a raster expressed in its map coordinates."""
    g = affine_to_matrix(gt)
    p = _sample_grid(width, height)
    return fit_transform(_apply(g, p), _apply(g, t(p)), t.kind)


def corrected_mapping(
    t_map: Transform, gt: Any, width: int, height: int
) -> tuple[np.ndarray | None, np.ndarray]:
    """New pixel -> map mapping of a raster corrected by the map-space ``t_map``.

    Returns ``(matrix, gcps)``: the 3x3 matrix when the mapping is affine (``None``
    otherwise) and ``(n, 4)`` GCPs ``pixel, line, X, Y`` sampled from it.
    """
    g = affine_to_matrix(gt)
    p = _sample_grid(width, height)
    mapped = t_map(_apply(g, p))
    gcps = np.concatenate([p, mapped], axis=1)
    if t_map.is_affine:
        return t_map.matrix() @ g, gcps
    return None, gcps


def write_corrected_raster(
    tmp_path: Path, info: RasterInfo, t_map: Transform, resample: bool, resampling: str = "bilinear",
    run: Run = QUIET,
) -> str:
    """Write ``info``'s raster corrected by ``t_map``; returns ``"geotransform"`` or ``"warp"``.

    GDAL reports its progress to ``run`` and stops when the user cancels (:class:`CancelledError`).
    """
    check_choice(resampling, RESAMPLING, "resampling")
    check_warpable(info, t_map.kind, resample)
    gdal = _gdal()
    matrix, gcps = corrected_mapping(t_map, info.transform, info.width, info.height)
    creation = ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]
    try:
        with osgeo_cache(gdal), osgeo_thread_options(gdal, **READ_IN_THIS_THREAD):
            return _write_corrected(gdal, tmp_path, info, t_map, matrix, gcps, resample, resampling, creation,
                                    run)
    except RuntimeError as exc:
        run.check("Writing the corrected raster")  # GDAL stopped because the user cancelled
        if "IReadBlock" in str(exc) or "Read failed" in str(exc):  # GDAL could not read the input's pixels
            raise RasterIOError(f"Reading '{info.path}' to correct it failed ({exc}); {UNREADABLE}") from exc
        raise RasterIOError(f"Writing the corrected raster failed ({exc}); check the output folder.") from exc


def _write_corrected(gdal: Any, tmp_path: Path, info: RasterInfo, t_map: Transform, matrix: np.ndarray | None,
                     gcps: np.ndarray, resample: bool, resampling: str, creation: list[str], run: Run) -> str:
    """:func:`write_corrected_raster`'s GDAL calls: a copy with a new geotransform, or a warp."""
    if matrix is not None and not resample:
        ds = gdal.Translate(str(tmp_path), info.path, format="GTiff", creationOptions=creation,
                            callback=run.gdal_callback())
        ds.SetGeoTransform(matrix_to_gdal(matrix))
        ds = None
        return "geotransform"
    if matrix is None and not resample:
        logger.warning(
            "a %s transform cannot be written as a geotransform; the raster is resampled (%s)",
            t_map.kind,
            resampling,
        )
    # an unnamed VRT lives in memory only: nothing in /vsimem to remove, even when the warp fails
    if matrix is not None:
        src = gdal.Translate("", info.path, format="VRT")
        src.SetGeoTransform(matrix_to_gdal(matrix))
        order = 0
    else:
        # GCPs given to Translate replace the geotransform (GDAL prefers a geotransform over GCPs)
        gcp_list = [gdal.GCP(float(x), float(y), 0.0, float(c), float(r)) for c, r, x, y in gcps]
        src = gdal.Translate("", info.path, format="VRT", GCPs=gcp_list, outputSRS=info.crs_wkt or None)
        order = t_map.degree
    _warp(gdal, tmp_path, info, src, order, resampling, creation, run)
    return "warp"


def check_warpable(info: RasterInfo, kind: str, resample: bool) -> None:
    """Raise :class:`InputError` when correcting ``info`` by a transform of ``kind`` needs a warp that is
    not supported: a rotated geotransform, resampled (``resample``) or by a polynomial (no geotransform can
    hold it). Needs only the kind, so a front can refuse before it measures anything."""
    g = info.transform
    if (resample or degree_of(kind) > 1) and (abs(g.b) > 1e-12 or abs(g.d) > 1e-12):
        raise InputError(
            f"'{info.path}' has a rotated geotransform; warping it is not supported, use "
            "RESAMPLE=false with a shift or affine transform."
        )


def _warp(gdal: Any, tmp_path: Path, info: RasterInfo, src: Any, order: int, resampling: str,
          creation: list[str], run: Run) -> None:
    """``gdal.Warp`` of ``src`` (the input with its corrected georeferencing, a VRT) onto the input's
    footprint."""
    g = info.transform
    x0, y0 = g.c, g.f
    x1, y1 = g.c + g.a * info.width, g.f + g.e * info.height
    nodata = info.nodata
    if nodata is None:
        nodata = OUTPUT_NODATA if np.issubdtype(np.dtype(info.dtypes[0]), np.floating) else 0
    opts: dict[str, Any] = {
        "format": "GTiff",
        "creationOptions": creation,
        "resampleAlg": resampling,
        "outputBounds": (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)),
        "width": info.width,
        "height": info.height,
        "dstNodata": nodata,
        "multithread": False,
        "callback": run.gdal_callback(),
    }
    if info.nodata is not None:
        opts["srcNodata"] = info.nodata
    if info.crs_wkt:
        opts["dstSRS"] = info.crs_wkt
    if order:
        opts["polynomialOrder"] = order
    gdal.Warp(str(tmp_path), src, **opts)


REF_MAP_CRS = "REF_MAP_CRS"
"""Layer metadata item of a tie-point layer whose ``ref_map_x/y`` lie on another raster's grid (keypoint
registration): that raster's map CRS (WKT, empty without one)."""
TIEPOINT_FIELDS: tuple[tuple[str, type], ...] = (
    ("pixel_x", float), ("pixel_y", float), ("dx", float), ("dy", float), ("ref_map_x", float),
    ("ref_map_y", float), ("reliability", float), ("distinctness", float), ("score", float),
    ("residual", float), ("used", int), ("status", str),
)
"""Attribute fields of the tie-point layer, in order, with their value types."""


def _tiepoint_values(p: TiePoint, status: str, residual: float, ref_map_x: float,
                     ref_map_y: float) -> dict[str, float | int | str | None]:
    """One tie point's attributes (None = null: no distinctness measured, no transform fitted)."""
    return {
        "pixel_x": p.x, "pixel_y": p.y, "dx": p.dx, "dy": p.dy,
        "ref_map_x": ref_map_x, "ref_map_y": ref_map_y, "reliability": p.reliability,
        "distinctness": p.distinctness if np.isfinite(p.distinctness) else None,
        "score": p.score,
        "residual": residual if np.isfinite(residual) else None,
        "used": int(status == "used"),
        "status": status,
    }


def write_tiepoints_gpkg(
    tmp_path: Path,
    points: Sequence[TiePoint],
    status: Sequence[str] | np.ndarray,
    residual: np.ndarray,
    info: RasterInfo,
    reference: RasterInfo | None = None,
) -> None:
    """Tie points as a GeoPackage point layer at their INPUT map position.

    ``status`` says what became of each point (``used``, ``outlier``, ``ambiguous``, ``at search limit``,
    ...), or is a boolean "used" mask; ``residual`` is NaN (written as null) where no transform was
    fitted. ``reference``: when the reference positions (``ref_x, ref_y``) are pixels of another grid
    (keypoint registration), that grid; its geotransform gives ``ref_map_x/y``.
    """
    gdal = _gdal()
    from osgeo import ogr, osr

    if isinstance(status, np.ndarray) and status.dtype == bool:
        status = ["used" if u else "outlier" for u in status]
    at = info.pixel_to_map(np.array([[p.x, p.y] for p in points]).reshape(-1, 2))
    ref_at = (reference or info).pixel_to_map(np.array([[p.ref_x, p.ref_y] for p in points]).reshape(-1, 2))
    srs = None
    if info.map_crs_wkt:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(info.map_crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    drv = ogr.GetDriverByName("GPKG")
    try:
        ds = drv.CreateDataSource(str(tmp_path))
        layer = ds.CreateLayer("tiepoints", srs, ogr.wkbPoint)
        if reference is not None:  # ref_map_x/y are in the reference's CRS, which may not be the layer's
            layer.SetMetadataItem(REF_MAP_CRS, reference.map_crs_wkt or "")
        kinds = {float: ogr.OFTReal, int: ogr.OFTInteger, str: ogr.OFTString}
        for name, kind in TIEPOINT_FIELDS:
            layer.CreateField(ogr.FieldDefn(name, kinds[kind]))
        defn = layer.GetLayerDefn()
        ds.StartTransaction()
        for p, st, r, (mx, my), (rx, ry) in zip(points, status, residual, at, ref_at, strict=True):
            feat = ogr.Feature(defn)
            values = _tiepoint_values(p, st, float(r), float(rx), float(ry))
            for k, v in values.items():
                if v is None:
                    feat.SetFieldNull(k)
                else:
                    feat.SetField(k, v)
            geom = ogr.Geometry(ogr.wkbPoint)
            geom.AddPoint_2D(float(mx), float(my))
            feat.SetGeometry(geom)
            layer.CreateFeature(feat)
        ds.CommitTransaction()
        ds = None
    except RuntimeError as exc:
        raise RasterIOError(f"Writing the tie points failed ({exc}); check the output folder.") from exc
    del gdal


def read_tiepoints_gpkg(path: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Used tie points of a GeoPackage written by :func:`write_tiepoints_gpkg`: map src, map dst, CRS WKT."""
    _gdal()
    from osgeo import ogr

    try:
        ds = ogr.Open(str(path))
    except RuntimeError as exc:
        raise InputError(f"'{path}' cannot be opened as a tie-point GeoPackage ({exc}).") from exc
    layer = ds.GetLayer(0) if ds is not None else None
    names = (
        [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(layer.GetLayerDefn().GetFieldCount())]
        if layer is not None
        else []
    )
    if layer is None or not {"ref_map_x", "ref_map_y", "used"} <= set(names):
        raise InputError(
            f"'{path}' is not a tie-point layer written by sartoolbox:coregister (fields "
            "ref_map_x, ref_map_y and used are missing)."
        )
    sref = layer.GetSpatialRef()
    wkt = sref.ExportToWkt() if sref is not None else None
    ref_crs = layer.GetMetadataItem(REF_MAP_CRS)
    if ref_crs is not None and not crs_equal(ref_crs or None, wkt):
        raise InputError(
            f"The tie points of '{path}' (written by sartoolbox:keypointregister) are in the input's CRS and "
            "their reference positions (ref_map_x, ref_map_y) in the reference's, another one: no transform "
            "can be fitted between them. Use keypointregister's OUTPUT (the input on the reference's grid), "
            "or register rasters that share a CRS."
        )
    src, dst = [], []
    for feat in layer:
        if feat.GetField("used"):
            geom = feat.GetGeometryRef()
            pair = (np.nan, np.nan) if geom is None else (geom.GetX(), geom.GetY())
            ref = (feat.GetField("ref_map_x"), feat.GetField("ref_map_y"))
            if None in ref or not np.isfinite([*pair, *ref]).all():
                raise InputError(
                    f"Tie point {feat.GetFID()} of '{path}' is used but has no point geometry or no "
                    "ref_map_x / ref_map_y; set its 'used' field to 0 or delete it (QGIS attribute table)."
                )
            src.append(pair)
            dst.append(ref)
    return np.array(src, dtype=np.float64).reshape(-1, 2), np.array(dst, dtype=np.float64).reshape(-1, 2), wkt


def _num(v: float) -> str:
    return repr(float(v))


def points_file_text(
    points: Sequence[TiePoint], used: np.ndarray, residual_xy: np.ndarray, info: RasterInfo
) -> str:
    """QGIS 3.22 Georeferencer ``.points`` text.

    ``#CRS: <wkt>`` then ``mapX,mapY,pixelX,pixelY,enable,dX,dY,residual``: map
    coordinates of where each INPUT pixel position belongs (from the reference),
    pixel coordinates with y negative (QGIS's raster pixel frame), residuals in pixels.
    """
    at = info.pixel_to_map(np.array([[p.ref_x, p.ref_y] for p in points]).reshape(-1, 2))
    lines = []
    if info.map_crs_wkt:
        lines.append(f"#CRS: {' '.join(info.map_crs_wkt.split())}")
    lines.append("mapX,mapY,pixelX,pixelY,enable,dX,dY,residual")
    for p, u, (rx, ry), (mx, my) in zip(points, used, residual_xy, at, strict=True):
        lines.append(
            ",".join(
                [
                    _num(mx),
                    _num(my),
                    _num(p.x),
                    _num(-p.y),
                    str(int(u)),
                    _num(rx),
                    _num(ry),
                    _num(float(np.hypot(rx, ry))),
                ]
            )
        )
    return "\n".join(lines) + "\n"


def write_text(tmp_path: Path, text: str) -> None:
    try:
        tmp_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RasterIOError(f"Writing '{tmp_path}' failed ({exc}); check the output folder.") from exc


def write_report(tmp_path: Path, report: dict[str, Any]) -> None:
    write_text(tmp_path, json.dumps(report, indent=2, allow_nan=True) + "\n")


def _stretch(a: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a)
    if not ok.any():
        return np.zeros(a.shape, np.uint8)
    lo, hi = np.percentile(a[ok], [2, 98])
    out = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1) * 255
    return np.where(ok, out, 0).astype(np.uint8)


def _is_sar_like(a: np.ndarray) -> bool:
    """Linear SAR values (shown in log scale): :func:`engine.input_kind.heavy_tailed` of the finite ones."""
    from ..input_kind import heavy_tailed

    return heavy_tailed(a[np.isfinite(a)])


def _display(a: np.ndarray, log_scale: bool) -> np.ndarray:
    if not log_scale:
        return a
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, np.log(np.maximum(a, 1e-12)), np.nan)


def checker_cell(height: int, width: int, tiles: int) -> int:
    """Side (pixels) of the cells of a checkerboard with ``tiles`` cells along its longer side."""
    return max(1, max(height, width) // tiles)


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    """Cells of ``a`` and ``b`` (same shape, trailing axes allowed), ``tiles`` along the longer side."""
    h, w = a.shape[:2]
    cell = checker_cell(h, w, tiles)
    yy, xx = np.mgrid[:h, :w]
    pick = ((yy // cell) + (xx // cell)) % 2 == 0
    return np.where(pick.reshape(pick.shape + (1,) * (a.ndim - 2)), a, b)


CHECKER_CELLS = 8
"""Cells along the longer side of the checkerboard."""


def _colour(ref: np.ndarray) -> np.ndarray:
    """Reference bands ``(k, h, w)`` -> RGB ``(h, w, 3)`` uint8: colour for 3 bands, else grey."""
    if ref.shape[0] == 3:  # one stretch for the three bands keeps the colour balance
        return np.moveaxis(_stretch(_display(ref, _is_sar_like(ref))), 0, -1)
    grey = np.nanmean(ref, axis=0) if np.isfinite(ref).any() else ref[0]
    return np.repeat(_stretch(_display(grey, _is_sar_like(grey)))[..., None], 3, axis=-1)


def _corrected(inp: np.ndarray, t_pix: Transform, factor: float) -> np.ndarray:
    """The decimated input resampled as corrected: ``corrected(q) = input(T^-1(q))``."""
    from scipy import ndimage

    h, w = inp.shape
    grid = _sample_grid(w * factor, h * factor)
    inverse = fit_transform(t_pix(grid), grid, t_pix.kind)  # exact for shift/affine
    yy, xx = np.mgrid[:h, :w]
    q = np.stack([(xx.ravel() + 0.5) * factor, (yy.ravel() + 0.5) * factor], axis=1)
    src = inverse(q) / factor - 0.5
    filled = np.where(np.isfinite(inp), inp, np.nanmedian(inp) if np.isfinite(inp).any() else 0.0)
    out = ndimage.map_coordinates(filled, [src[:, 1], src[:, 0]], order=1, cval=np.nan).reshape(h, w)
    valid = ndimage.map_coordinates(np.isfinite(inp).astype(np.float32), [src[:, 1], src[:, 0]], order=1)
    return np.where(valid.reshape(h, w) > 0.5, out, np.nan)


def _label(img: np.ndarray, lines: Sequence[str]) -> None:
    """Burn ``lines`` of text into the top-left corner of an RGB uint8 image (in place)."""
    from PIL import Image, ImageDraw, ImageFont

    w = img.shape[1]
    size = max(10, min(28, w // 30))
    try:
        font: Any = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed bitmap font
        font = ImageFont.load_default()
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    y = size // 2
    for line in lines:
        box = draw.textbbox((size // 2, y), line, font=font)
        draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
        draw.text((size // 2, y), line, fill=(255, 255, 0), font=font)
        y = int(box[3]) + size // 2
    img[:] = np.asarray(pil)


def write_checkerboard(
    tmp_path: Path,
    inp: np.ndarray,
    ref: np.ndarray,
    t_pix: Transform,
    factor: float,
    info: RasterInfo,
    run: Run = QUIET,
) -> None:
    """Before | after checkerboards of the input (grey) and the reference (colour when RGB), as a GeoTIFF.

    RGB, labelled. The *after* panel lies on the input's footprint (decimated by
    ``factor``), so it overlays the reference in QGIS; the *before* panel lies
    beside it to the west. Cancel is checked through ``run`` between the steps.
    """
    what = "Writing the checkerboard"
    if Path(tmp_path).suffix.lower() not in (".tif", ".tiff"):
        raise InputError(
            f"The checkerboard is written as a GeoTIFF; choose a file ending in .tif, not '{tmp_path}'."
        )
    h, w = inp.shape
    log_in = _is_sar_like(inp)
    before = np.repeat(_stretch(_display(inp, log_in))[..., None], 3, axis=-1)
    run.check(what)
    after = np.repeat(_stretch(_display(_corrected(inp, t_pix, factor), log_in))[..., None], 3, axis=-1)
    run.check(what)
    colour = _colour(ref)
    run.check(what)
    cell = checker_cell(h, w, CHECKER_CELLS)
    panels = [checkerboard(before, colour, CHECKER_CELLS), checkerboard(after, colour, CHECKER_CELLS)]
    size_m = _cell_size_text(cell * factor, info)
    dx, dy = t_pix.mean_shift()
    _label(panels[0], ["BEFORE", f"cells {size_m}"])
    _label(panels[1], [f"AFTER ({t_pix.kind}, {dx:+.2f}, {dy:+.2f} px)", f"cells {size_m}"])
    sep = max(4, w // 50)
    img = np.concatenate([panels[0], np.full((h, sep, 3), 255, np.uint8), panels[1]], axis=1)
    g = affine_to_matrix(info.transform) @ np.array(
        [[factor, 0.0, -(w + sep) * factor], [0.0, factor, 0.0], [0.0, 0.0, 1.0]]
    )
    run.check(what)
    _write_rgb_geotiff(tmp_path, img, g, info.crs_wkt)


def _cell_size_text(pixels: float, info: RasterInfo) -> str:
    from .georef import pixel_size_m

    metres = pixel_size_m(info)
    return f"{pixels:.0f} px" + (f" = {pixels * metres:.0f} m" if metres else "")


def _write_rgb_geotiff(tmp_path: Path, img: np.ndarray, g: np.ndarray, crs_wkt: str | None) -> None:
    gdal = _gdal()
    try:
        ds = gdal.GetDriverByName("GTiff").Create(
            str(tmp_path),
            img.shape[1],
            img.shape[0],
            3,
            gdal.GDT_Byte,
            ["COMPRESS=DEFLATE", "PHOTOMETRIC=RGB"],
        )
        ds.SetGeoTransform(matrix_to_gdal(g))
        if crs_wkt:
            ds.SetProjection(crs_wkt)
        for i in range(3):
            ds.GetRasterBand(i + 1).WriteArray(img[..., i])
        ds.FlushCache()
        ds = None
    except RuntimeError as exc:
        raise RasterIOError(f"Writing the checkerboard failed ({exc}); check the output folder.") from exc
