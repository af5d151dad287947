"""Keypoint-registration outputs of their own: the INPUT on the REFERENCE grid and the match figure.

Tie points (GeoPackage), the QGIS ``.points`` file and the JSON report are written
by the co-registration's writers (:mod:`engine.registration.outputs`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...errors import RasterIOError, check_choice
from ...raster_io import OUTPUT_NODATA, RasterInfo, create_raster, open_raster, profile_like, read_window
from ...run import Run
from ...tiling import Window
from .warp import grid_sources

logger = logging.getLogger(__name__)

RESAMPLING_ORDER = {"nearest": 0, "bilinear": 1, "cubic": 3}
"""Resampling of the corrected raster -> spline order of :func:`scipy.ndimage.map_coordinates`."""
STRIP_ROWS = 256
PREVIEW_SIDE = 768
"""Longest side of each image in the match figure."""


def check_resampling(resampling: str) -> int:
    """The spline order of ``resampling``; :class:`InputError` for an unknown name."""
    return RESAMPLING_ORDER[check_choice(resampling, RESAMPLING_ORDER, "resampling")]


def write_on_reference_grid(tmp_path: Path, inp: RasterInfo, ref: RasterInfo, matrix: np.ndarray,
                            resampling: str, run: Run) -> None:
    """Every INPUT band resampled onto the REFERENCE grid (size, CRS, geotransform), float32.

    ``matrix`` maps INPUT pixel-corner coordinates to REFERENCE ones; each output
    pixel centre is sent back through its inverse (:func:`.warp.grid_sources`).
    Outside the INPUT, or where the INPUT is nodata, the output is nodata.
    """
    from scipy import ndimage

    order = check_resampling(resampling)
    bands = list(range(1, inp.count + 1))
    with open_raster(inp.path) as src:
        data = read_window(src, bands, Window(0, 0, inp.height, inp.width), fill=np.nan)
    valid = np.isfinite(data).all(axis=0)
    if inp.nodata is not None and not np.isnan(inp.nodata):
        valid &= ~(data == inp.nodata).any(axis=0)
    data = np.where(valid, data, 0.0).astype(np.float32)
    if order > 1:  # spline coefficients once, not per strip (map_coordinates' prefilter takes the whole band)
        data = np.stack([ndimage.spline_filter(b, order, output=np.float64, mode="constant") for b in data])
    profile = profile_like(ref, count=inp.count, dtype="float32", nodata=OUTPUT_NODATA)
    with create_raster(tmp_path, profile, inp.descriptions) as writer:
        for row0 in range(0, ref.height, STRIP_ROWS):
            run.check("Writing the registered raster")
            rows = min(STRIP_ROWS, ref.height - row0)
            coords = grid_sources(matrix, rows, ref.width, row0)
            ok = ndimage.map_coordinates(valid.astype(np.float32), coords, order=1, cval=0.0) > 0.999
            strip = np.full((inp.count, rows * ref.width), OUTPUT_NODATA, np.float32)
            for b in range(inp.count):
                vals = ndimage.map_coordinates(data[b], coords, order=order, cval=0.0, mode="constant",
                                               prefilter=False)
                strip[b, ok] = vals[ok]
            writer.write_rows(row0, strip.reshape(inp.count, rows, ref.width))
            run.progress((row0 + rows) / ref.height)


def _display(img: np.ndarray, valid: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """8-bit preview (2-98 % stretch of the prepared image) no larger than ``side``, and its factor."""
    from scipy import ndimage

    f = min(1.0, side / max(img.shape))
    small = ndimage.zoom(img, f, order=1, grid_mode=True, mode="nearest") if f < 1 else img
    ok = ndimage.zoom(valid.astype(np.float32), f, order=0, grid_mode=True, mode="nearest") > 0.5 \
        if f < 1 else valid
    vals = small[ok]
    lo, hi = np.percentile(vals, [2, 98]) if vals.size else (0.0, 1.0)
    out = np.clip((small - lo) / max(float(hi - lo), 1e-12), 0, 1) * 255
    return np.where(ok, out, 0).astype(np.uint8), f


def write_matches_png(tmp_path: Path, inp: np.ndarray, inp_valid: np.ndarray, ref: np.ndarray,
                      ref_valid: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    """INPUT | REFERENCE side by side (prepared, stretched), inlier matches as lines and dots."""
    from PIL import Image, ImageDraw

    a, fa = _display(inp, inp_valid, PREVIEW_SIDE)
    b, fb = _display(ref, ref_valid, PREVIEW_SIDE)
    gap = 8
    height = max(a.shape[0], b.shape[0])
    canvas = np.full((height, a.shape[1] + gap + b.shape[1]), 255, np.uint8)
    canvas[:a.shape[0], :a.shape[1]] = a
    canvas[:b.shape[0], a.shape[1] + gap:] = b
    image = Image.fromarray(canvas).convert("RGB")
    draw = ImageDraw.Draw(image)
    offset = a.shape[1] + gap
    rng = np.random.default_rng(0)
    for (x0, y0), (x1, y1) in zip(src * fa, dst * fb, strict=True):
        colour = tuple(int(c) for c in rng.integers(40, 256, 3))
        draw.line([(x0, y0), (x1 + offset, y1)], fill=colour, width=1)
        for cx, cy in ((x0, y0), (x1 + offset, y1)):
            draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], outline=colour)
    try:
        image.save(tmp_path, format="PNG")
    except OSError as exc:
        raise RasterIOError(f"Writing the match figure failed ({exc}); check the output folder.") from exc
