"""Writing a scene pair as two float32 GeoTIFFs on the same grid, with the truth in a tag."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..raster_io import _rasterio, atomic_output, check_writable, default_profile, raster_env
from ..run import IsCancelled, Log, Progress, Run
from .scene import ScenePair, generate_scene_pair
from .validation import validate

logger = logging.getLogger(__name__)

METADATA_TAG = "SAR_TOOLBOX_SYNTHETIC"
"""GeoTIFF tag (dataset namespace) holding the JSON truth of a written scene."""
SAR_DESCRIPTION = "sigma0 intensity (linear)"
OPTICAL_BANDS = ("red", "green", "blue", "nir")


@dataclass(frozen=True)
class SceneFiles:
    """Paths and truth of a scene pair written by :func:`write_scene_pair`."""

    sar_path: Path
    optical_path: Path
    shift: tuple[float, float]
    seed: int
    looks: float
    crs_wkt: str


def _crs_wkt(crs: str) -> str:
    """WKT of a projected CRS given as an authority code or WKT."""
    rasterio = _rasterio()
    try:
        parsed = rasterio.crs.CRS.from_user_input(crs)
    except Exception:
        raise InputError(f"CRS {crs!r} is not understood; give an authority code such as 'EPSG:32631' "
                         "(UTM 31N) or a WKT string.") from None
    if parsed.is_geographic:
        raise InputError(f"CRS {crs!r} is geographic (degrees); use a projected CRS in metres such as "
                         "'EPSG:32631' so that pixel_size is in metres.")
    return str(parsed.to_wkt())


def _check_origin(origin: Any) -> tuple[float, float]:
    try:
        x0, y0 = (float(v) for v in origin)
    except (TypeError, ValueError):
        raise InputError(f"origin must be (x, y) of the top-left corner, got {origin!r}.") from None
    if not (math.isfinite(x0) and math.isfinite(y0)):
        raise InputError(f"origin must be finite numbers, got {origin!r}.")
    return x0, y0


WRITE_ROWS = 256
"""Rows written per step (one row of 256-pixel blocks): progress and cancel between steps."""


def _write_pair(pair: ScenePair, sar_p: Path, opt_p: Path, wkt: str, origin: tuple[float, float],
                run: Run) -> None:
    """Write both rasters atomically (nothing is left behind on error or cancellation)."""
    rasterio = _rasterio()
    transform = rasterio.transform.from_origin(origin[0], origin[1], pair.pixel_size, pair.pixel_size)
    tag = json.dumps(pair.truth())
    spans = (run.span(0.0, 0.2), run.span(0.2, 1.0))  # the SAR file has one band, the optical four
    with atomic_output(sar_p) as sar_tmp, atomic_output(opt_p) as opt_tmp, raster_env():
        for tmp, data, names, span in ((sar_tmp, pair.sar[None], (SAR_DESCRIPTION,), spans[0]),
                                       (opt_tmp, pair.optical, OPTICAL_BANDS, spans[1])):
            height, width = data.shape[1:]
            profile = default_profile(width, height, data.shape[0], "float32", wkt, transform, nodata=None)
            with rasterio.open(tmp, "w", **profile) as dst:
                for top in span.steps(height, WRITE_ROWS, "Synthetic scene generation"):
                    rows = min(WRITE_ROWS, height - top)  # blocks are compressed as their rows complete
                    dst.write(data[:, top : top + rows], window=rasterio.windows.Window(0, top, width, rows))
                for i, name in enumerate(names, start=1):
                    dst.set_band_description(i, name)
                dst.update_tags(**{METADATA_TAG: tag})
        run.check("Synthetic scene generation")


def write_scene_pair(
    sar_path: str | os.PathLike[str],
    optical_path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    pixel_size: float = 10.0,
    crs: str = "EPSG:32631",
    origin: tuple[float, float] = (500000.0, 5000000.0),
    seed: int = 0,
    looks: float = 4,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
    **options: Any,
) -> SceneFiles:
    """Generate a scene pair and write it as two float32 GeoTIFFs on the same grid.

    ``origin`` is the (x, y) of the top-left corner in CRS units. The SAR file has one band
    ("sigma0 intensity (linear)"), the optical four (red, green, blue, nir); both carry the
    JSON truth (seed, looks, shift and its sign convention) in the ``SAR_TOOLBOX_SYNTHETIC`` tag.
    Extra ``options`` go to :func:`generate_scene_pair`. Nothing is written on bad input or
    cancellation.
    """
    run = Run.of(progress, is_cancelled, log)
    what = "Synthetic scene generation"
    sar_p, opt_p = Path(sar_path), Path(optical_path)
    if sar_p.resolve() == opt_p.resolve():
        raise InputError("The SAR and optical outputs must be different files; choose two paths.")
    xy = _check_origin(origin)
    wkt = _crs_wkt(crs)
    check_writable(sar_p)
    check_writable(opt_p)
    validate(width, height, seed, looks, shift_x, shift_y, options.get("look_direction", "east"), pixel_size,
             options.get("incidence_angle", 37.0), options.get("sun_elevation", 40.0),
             options.get("sun_azimuth", 150.0))
    run.check(what)
    run.progress(0.0)
    run.say(f"Generating a {width} x {height} synthetic scene (seed {seed}, {looks} looks, "
            f"shift {shift_x:+.3f}, {shift_y:+.3f} px).", logger=logger)
    pair = run.background(what, generate_scene_pair, width, height, seed=seed, looks=looks, shift_x=shift_x,
                          shift_y=shift_y, pixel_size=pixel_size, run=run.span(0.0, 0.6), **options)
    run.check(what)
    run.progress(0.6)
    _write_pair(pair, sar_p, opt_p, wkt, xy, run.span(0.6, 1.0))
    run.progress(1.0)
    run.say(f"Wrote SAR '{sar_p}' and optical '{opt_p}'.", logger=logger)
    return SceneFiles(sar_path=sar_p, optical_path=opt_p, shift=pair.shift, seed=pair.seed, looks=pair.looks,
                      crs_wkt=wkt)
