"""Entry points: :func:`coregister` (measure + fit + write) and :func:`apply_transform`.

Sign convention of every reported shift: pixels of the INPUT, positive =
the INPUT content must move right (``shift_x``) / down (``shift_y``) to match
the reference.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, RegistrationError
from ..raster_io import RasterInfo, atomic_output, check_writable, inspect_raster
from .features import FeatureExtractor, get_extractor
from .georef import PairReader, check_pair
from .grid import TiePoint, as_arrays, measure, plan_global, plan_grid
from .outputs import (
    RESAMPLING,
    points_file_text,
    read_tiepoints_gpkg,
    write_checkerboard_png,
    write_corrected_raster,
    write_report,
    write_text,
    write_tiepoints_gpkg,
)
from .outputs import pixel_to_map_transform as _to_map
from .transforms import (
    LOWER,
    REQUIRED_POINTS,
    Transform,
    check_kind,
    fit_transform,
    ransac_fit,
    residuals,
    rmse,
)

log = logging.getLogger(__name__)

METHODS = ("classical", "deep", "gradmag")
MODES = ("global", "local")
MIN_RELIABILITY = 1.1
"""Tie points whose peak is not this much higher than the second peak are not used."""
OUTLIER_THRESHOLD = 2.0
"""RANSAC inlier threshold (input pixels)."""
REPORT_VERSION = 1


@dataclass
class CoregistrationResult:
    """What :func:`coregister` found (and wrote)."""

    shift_x: float
    shift_y: float
    rmse: float  # residual RMSE of the used tie points after the fit (input pixels)
    rmse_before: float  # RMSE of the used tie points' displacement before correction
    n_points: int  # tie points used by the fit
    n_measured: int
    n_reliable: int
    n_skipped: int
    reliability: float  # median reliability of the used points
    method: str
    model_id: str
    mode: str
    transform: Transform  # INPUT pixel -> reference position on the INPUT grid
    transform_map: Transform  # the same in the INPUT's map coordinates
    tiepoints: list[TiePoint]
    used: np.ndarray
    residuals: np.ndarray  # (n, 2) per tie point, input pixels
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)

    def report(self, input_info: RasterInfo, reference_path: str, params: dict[str, Any]) -> dict[str, Any]:
        g = input_info.transform
        return {
            "report_version": REPORT_VERSION,
            "generator": "sartoolbox:coregister",
            "input": input_info.path,
            "reference": str(reference_path),
            "method": self.method,
            "model_id": self.model_id,
            "mode": self.mode,
            "parameters": params,
            "shift_x": self.shift_x,
            "shift_y": self.shift_y,
            "shift_convention": "pixels of INPUT; positive = INPUT content must move right/down to match",
            "transform": self.transform.kind,
            "transform_pixel": self.transform.to_dict(),
            "transform_map": self.transform_map.to_dict(),
            "rmse_before": self.rmse_before,
            "rmse_after": self.rmse,
            "n_points_measured": self.n_measured,
            "n_points_reliable": self.n_reliable,
            "n_points_used": self.n_points,
            "n_windows_skipped": self.n_skipped,
            "median_reliability": self.reliability,
            "input_crs_wkt": input_info.crs_wkt,
            "input_geotransform": [g.c, g.a, g.b, g.f, g.d, g.e],
            "input_size": [input_info.width, input_info.height],
            "seconds": self.seconds,
            "outputs": self.outputs,
        }


Callback = Callable[..., Any] | None


def _say(log_cb: Callback, msg: str, level: int = logging.INFO) -> None:
    log.log(level, msg)
    if log_cb is not None:
        log_cb(msg)


def _check_params(
    method: str, mode: str, transform: str, grid_spacing: int, window: int, max_shift: int, resampling: str
) -> None:
    if method not in METHODS:
        raise InputError(f"Unknown METHOD '{method}'; use 'classical' or 'deep'.")
    if mode not in MODES:
        raise InputError(f"Unknown MODE '{mode}'; use 'global' (one shift) or 'local' (tie-point grid).")
    check_kind(transform)
    if mode == "global" and transform != "shift":
        raise InputError(f"MODE=global estimates one shift; TRANSFORM={transform} needs MODE=local.")
    if window < 32:
        raise InputError(f"WINDOW must be at least 32 pixels (got {window}); use 64 to 512.")
    if grid_spacing < 8:
        raise InputError(f"GRID_SPACING must be at least 8 pixels (got {grid_spacing}).")
    if max_shift < 1:
        raise InputError(f"MAX_SHIFT must be at least 1 pixel (got {max_shift}).")
    if resampling not in RESAMPLING:
        raise InputError(f"Unknown resampling '{resampling}'; use one of {', '.join(RESAMPLING)}.")


def make_extractor(method: str, model_path: str | os.PathLike[str] | None = None) -> FeatureExtractor:
    """The feature extractor of ``method`` (``deep`` loads a ``Task.EMBED`` model)."""
    if method == "deep":
        from .deep import OnnxEmbeddingFeatures

        return OnnxEmbeddingFeatures(model_path)
    return get_extractor(method)


def _fit(
    points: list[TiePoint],
    kind: str,
    mode: str,
    min_reliability: float,
    threshold: float,
    max_shift: int,
    log_cb: Callback,
) -> tuple[Transform, np.ndarray, np.ndarray, int]:
    """Select reliable points, fit robustly; returns transform, used mask, residual vectors, n reliable."""
    n = len(points)
    if n == 0:
        raise RegistrationError(
            "No tie point could be measured: every window is masked or nodata; choose "
            "rasters with a larger valid common area or a smaller WINDOW."
        )
    at_limit = np.array([p.at_limit for p in points])
    rel = np.array([p.reliability for p in points])
    if at_limit.sum() > n / 2:
        raise RegistrationError(
            f"The best match lies at the edge of the search range in {int(at_limit.sum())} of {n} windows: "
            f"the misregistration is probably larger than MAX_SHIFT={max_shift} pixels; increase MAX_SHIFT "
            "(and WINDOW) or pre-align the rasters."
        )
    reliable = (~at_limit) & (rel >= min_reliability)
    single = mode == "global" and n == 1
    if single and not reliable[0] and not at_limit[0]:
        _say(
            log_cb,
            f"the match is ambiguous (reliability {rel[0]:.2f} < {min_reliability}); check the "
            "checkerboard figure",
            logging.WARNING,
        )
        reliable[:] = True
    need = REQUIRED_POINTS[kind]
    if reliable.sum() < need:
        hint = f"use a lower-order transform (e.g. TRANSFORM={LOWER[kind]}) or " if kind in LOWER else ""
        raise RegistrationError(
            f"Only {int(reliable.sum())} reliable tie points were found ({n} measured), but a {kind} "
            f"transform needs at least {need}; {hint}a larger WINDOW or a smaller GRID_SPACING."
        )
    src, dst = as_arrays(points)
    idx = np.flatnonzero(reliable)
    t, inl = ransac_fit(src[idx], dst[idx], kind, threshold=threshold)
    used = np.zeros(n, dtype=bool)
    used[idx[inl]] = True
    if used.sum() < need:
        raise RegistrationError(
            f"Only {int(used.sum())} tie points agree on one {kind} transform "
            f"({int(reliable.sum())} reliable); use a lower-order transform, a larger WINDOW or a "
            "smaller GRID_SPACING."
        )
    return t, used, residuals(t, src, dst), int(reliable.sum())


def coregister(
    input_path: str | os.PathLike[str],
    reference_path: str | os.PathLike[str],
    *,
    method: str = "classical",
    mode: str = "global",
    grid_spacing: int = 256,
    window: int = 128,
    max_shift: int = 32,
    transform: str = "shift",
    resample: bool = False,
    resampling: str = "bilinear",
    output_path: str | os.PathLike[str] | None = None,
    tiepoints_path: str | os.PathLike[str] | None = None,
    gcp_path: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    checkerboard_path: str | os.PathLike[str] | None = None,
    model_path: str | os.PathLike[str] | None = None,
    input_band: int | None = None,
    reference_band: int | None = None,
    min_reliability: float = MIN_RELIABILITY,
    outlier_threshold: float = OUTLIER_THRESHOLD,
    progress: Callable[[float], Any] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    log: Callable[[str], Any] | None = None,
) -> CoregistrationResult:
    """Register INPUT onto REFERENCE and write the requested outputs (all or nothing).

    ``mode="global"`` measures one shift (the whole overlap as one window, or a
    sparse grid on large scenes); ``mode="local"`` measures a tie-point grid
    (``grid_spacing``, ``window``, ``max_shift``) and fits ``transform`` with RANSAC.
    Outputs whose path is None are not written.

    Raises:
        InputError: bad parameters, rasters that do not overlap, CRS on one side only.
        RegistrationError: shift beyond ``max_shift``, too few reliable tie points.
        ModelError: ``method="deep"`` with a model of the wrong task.
        CancelledError: ``is_cancelled()`` became true (nothing written).
    """
    t0 = time.perf_counter()
    _check_params(method, mode, transform, grid_spacing, window, max_shift, resampling)
    outputs = {
        "output": output_path,
        "tiepoints": tiepoints_path,
        "gcp": gcp_path,
        "report": report_path,
        "checkerboard": checkerboard_path,
    }
    for p in outputs.values():
        if p is not None:
            check_writable(p)
    extractor = make_extractor(method, model_path)
    geometry = check_pair(str(input_path), str(reference_path))
    if progress is not None:
        progress(2.0)
    if mode == "global":
        templates = plan_global(geometry.overlap, max_shift, geometry.reference_extent)
    else:
        templates = plan_grid(geometry.overlap, grid_spacing, window)
        if not templates:
            raise InputError(
                f"WINDOW={window} is larger than the common area of the rasters "
                f"({geometry.overlap.width} x {geometry.overlap.height} pixels); use a smaller WINDOW."
            )
    _say(log, f"{method} co-registration, {mode} mode: {len(templates)} window(s), max shift {max_shift} px")
    reader = PairReader(geometry, input_band, reference_band)
    with reader.opened():
        points, skipped = measure(
            reader, extractor, templates, max_shift, progress, is_cancelled, (2.0, 85.0)
        )
        kind = transform if mode == "local" else "shift"
        t_pix, used, res, n_rel = _fit(points, kind, mode, min_reliability, outlier_threshold, max_shift, log)
        info = geometry.input
        t_map = _to_map(t_pix, info.transform, info.width, info.height)
        centre = np.array([[info.width / 2, info.height / 2]])
        sx, sy = (float(v) for v in t_pix.displacement(centre)[0])
        src, dst = as_arrays(points)
        result = CoregistrationResult(
            shift_x=sx,
            shift_y=sy,
            rmse=rmse(res[used]),
            rmse_before=rmse((dst - src)[used]),
            n_points=int(used.sum()),
            n_measured=len(points),
            n_reliable=n_rel,
            n_skipped=skipped,
            reliability=float(np.median([p.reliability for p, u in zip(points, used, strict=True) if u])),
            method=method,
            model_id=extractor.model_id,
            mode=mode,
            transform=t_pix,
            transform_map=t_map,
            tiepoints=points,
            used=used,
            residuals=res,
            seconds=0.0,
        )
        _say(
            log,
            f"shift x {sx:+.3f} px, y {sy:+.3f} px ({kind}); {result.n_points} of {len(points)} tie points "
            f"used, RMSE {result.rmse_before:.3f} px before, {result.rmse:.3f} px after",
        )
        if is_cancelled is not None and is_cancelled():
            from ..errors import CancelledError

            raise CancelledError("Co-registration was cancelled; nothing was written.")
        params = {
            "grid_spacing": grid_spacing,
            "window": window,
            "max_shift": max_shift,
            "transform": transform,
            "resample": resample,
            "resampling": resampling,
            "min_reliability": min_reliability,
            "outlier_threshold": outlier_threshold,
        }
        preview = reader.read_preview(1024) if checkerboard_path is not None else None
    with ExitStack() as stack:
        tmp = {k: stack.enter_context(atomic_output(p)) for k, p in outputs.items() if p is not None}
        residual_norm = np.hypot(res[:, 0], res[:, 1])
        if "output" in tmp:
            how = write_corrected_raster(tmp["output"], info, t_map, resample, resampling)
            result.outputs["output_written_as"] = how
        if progress is not None:
            progress(95.0)
        if "tiepoints" in tmp:
            write_tiepoints_gpkg(tmp["tiepoints"], points, used, residual_norm, info)
        if "gcp" in tmp:
            write_text(tmp["gcp"], points_file_text(points, used, res, info))
        if "checkerboard" in tmp and preview is not None:
            write_checkerboard_png(tmp["checkerboard"], preview[0], preview[1], t_pix, preview[2])
        result.outputs.update({k: str(p) for k, p in outputs.items() if p is not None})
        result.seconds = time.perf_counter() - t0
        if "report" in tmp:
            write_report(tmp["report"], result.report(info, str(reference_path), params))
    if progress is not None:
        progress(100.0)
    return result


@dataclass(frozen=True)
class ApplyResult:
    output_path: str
    transform: str
    written_as: str  # "geotransform" (pixels untouched) or "warp"


def _crs_equal(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return not a and not b
    from rasterio.crs import CRS

    return bool(CRS.from_wkt(a) == CRS.from_wkt(b))


def apply_transform(
    source_path: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    transform: str | None = None,
    resample: bool = False,
    resampling: str = "bilinear",
    progress: Callable[[float], Any] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    log: Callable[[str], Any] | None = None,
) -> ApplyResult:
    """Apply a saved co-registration (JSON report or tie-point GeoPackage) to another raster.

    The correction is applied in map coordinates, so the raster may have another
    pixel size than the one registered (e.g. another band), but must be in the same CRS.
    ``transform`` refits the tie points of a GeoPackage (default: affine if there
    are enough points, else shift); for a report it must be None or the saved kind.
    """
    if resampling not in RESAMPLING:
        raise InputError(f"Unknown resampling '{resampling}'; use one of {', '.join(RESAMPLING)}.")
    src = Path(source_path)
    if not src.is_file():
        raise InputError(
            f"'{src}' does not exist; choose a report (.json) or tie points (.gpkg) written by "
            "sartoolbox:coregister."
        )
    check_writable(output_path)
    info = inspect_raster(input_path)
    if src.suffix.lower() == ".json":
        try:
            report = json.loads(src.read_text(encoding="utf-8"))
            t_map = Transform.from_dict(report["transform_map"])
            crs = report.get("input_crs_wkt")
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise InputError(
                f"'{src}' is not a co-registration report written by sartoolbox:coregister ({exc})."
            ) from exc
        if transform is not None and transform != t_map.kind:
            raise InputError(
                f"The report holds a {t_map.kind} transform; leave TRANSFORM empty or use "
                "the tie points (.gpkg) to fit another one."
            )
    else:
        s, d, crs = read_tiepoints_gpkg(str(src))
        kind = transform or ("affine" if len(s) >= REQUIRED_POINTS["affine"] else "shift")
        check_kind(kind)
        if len(s) < REQUIRED_POINTS[kind]:
            raise RegistrationError(
                f"'{src}' has {len(s)} used tie points; a {kind} transform needs "
                f"{REQUIRED_POINTS[kind]}; use a lower-order transform."
            )
        t_map = fit_transform(s, d, kind)
    if not _crs_equal(crs, info.crs_wkt):
        raise InputError(
            f"The co-registration was measured in another CRS than '{info.path}' has; reproject "
            "the raster to the CRS of the registered input first."
        )
    if is_cancelled is not None and is_cancelled():
        from ..errors import CancelledError

        raise CancelledError("Applying the transform was cancelled; nothing was written.")
    with atomic_output(output_path) as tmp:
        how = write_corrected_raster(tmp, info, t_map, resample, resampling)
    _say(log, f"applied a {t_map.kind} correction to {info.path} ({how})")
    if progress is not None:
        progress(100.0)
    return ApplyResult(str(output_path), t_map.kind, how)
