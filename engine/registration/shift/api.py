"""Entry points: :func:`coregister` (plan -> measure -> fit -> write) and :func:`apply_transform`.

Sign convention of every reported shift: pixels of the INPUT, positive =
the INPUT content must move right (``shift_x``) / down (``shift_y``) to match
the reference.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, RegistrationError, check_choice
from ...raster_io import RasterInfo, atomic_output, check_writable
from ...run import IsCancelled, Log, Progress, Run
from ..features import FeatureExtractor
from ..georef import (
    PairGeometry,
    PairReader,
    band_list,
    check_pair,
    crs_equal,
    inspect_in_display_frame,
    pixel_size_m,
    require_grid,
)
from ..outputs import (
    RESAMPLING,
    check_warpable,
    points_file_text,
    read_tiepoints_gpkg,
    write_checkerboard,
    write_corrected_raster,
    write_report,
    write_text,
    write_tiepoints_gpkg,
)
from ..outputs import pixel_to_map_transform as _to_map
from ..tiepoints import TiePoint, as_arrays
from ..transforms import KINDS, SHIFT_KINDS, Transform, check_kind, fit_transform, rmse
from .calibration import EVIDENCE, calibration
from .fitting import FitLimits, FitRefusedError, PointFit, fit_points, fit_single
from .grid import global_search_limit, measure, plan_global, plan_grid
from .methods import (  # the plugin and batch read the method names from here
    BASELINE_METHODS,  # noqa: F401
    DEFAULT_METHOD,
    METHODS,
    USER_METHODS,  # noqa: F401
    make_extractor,
)

logger = logging.getLogger(__name__)

MODES = ("global", "local")
TRANSFORMS = SHIFT_KINDS
MIN_WINDOW = 32
MIN_GRID_SPACING = 8
DEFAULT_MAX_SHIFT_M = 150.0
"""Default search radius in metres: covers the geolocation error between sensors (tens of metres,
up to about a hundred); rasters without a CRS take the number as pixels."""
MIN_SEARCH_PX = 32
"""The search radius derived from metres is never below this many pixels (coarse pixels)."""
REPORT_VERSION = 2


@dataclass(frozen=True)
class Settings:
    """The parameters of one :func:`coregister` run (validated by :meth:`check`)."""

    method: str = DEFAULT_METHOD
    mode: str = "global"
    transform: str = "shift"
    grid_spacing: int = 256
    window: int = 128
    max_shift: int | None = None
    max_shift_m: float = DEFAULT_MAX_SHIFT_M
    resample: bool = False
    resampling: str = "bilinear"
    input_band: int | None = None
    reference_bands: tuple[int, ...] | None = None
    limits: FitLimits = field(default_factory=FitLimits)

    @property
    def kind(self) -> str:
        """The transform fitted (global mode: always a shift)."""
        return self.transform if self.mode == "local" else "shift"

    def check(self) -> None:
        """Raise :class:`InputError` for an unusable parameter (says what to choose)."""
        check_choice(self.method, METHODS, "METHOD")
        check_choice(self.mode, MODES, "MODE", " (global: one shift; local: a tie-point grid)")
        check_kind(self.transform, TRANSFORMS)
        if self.mode == "global" and self.transform != "shift":
            raise InputError(f"MODE=global estimates one shift; TRANSFORM={self.transform} needs MODE=local.")
        if self.window < MIN_WINDOW:
            raise InputError(
                f"WINDOW must be at least {MIN_WINDOW} pixels (got {self.window}); use 64 to 512."
            )
        if self.grid_spacing < MIN_GRID_SPACING:
            raise InputError(
                f"GRID_SPACING must be at least {MIN_GRID_SPACING} pixels (got {self.grid_spacing})."
            )
        if self.max_shift is not None and self.max_shift < 1:
            raise InputError(
                f"MAX_SHIFT must be at least 1 pixel (got {self.max_shift}); leave it empty to use "
                "MAX_SHIFT_M."
            )
        if not self.max_shift_m > 0:
            raise InputError(
                f"MAX_SHIFT_M must be positive (got {self.max_shift_m}); 100 to 300 m suits most pairs."
            )
        check_choice(self.resampling, RESAMPLING, "resampling")
        self.limits.check()

    def report(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("limits"))
        return d


@dataclass(frozen=True)
class OutputPaths:
    """Where :func:`coregister` writes; None = not written."""

    output: str | None = None
    tiepoints: str | None = None
    gcp: str | None = None
    report: str | None = None
    checkerboard: str | None = None

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in asdict(self).items() if v is not None]

    def check_writable(self) -> None:
        for _, path in self.items():
            check_writable(path)


@dataclass
class CoregistrationResult:
    """What :func:`coregister` found (and wrote)."""

    shift_x: float
    shift_y: float
    rmse: float  # residual RMSE of the used tie points after the fit (input pixels); NaN: no redundancy
    rmse_before: float  # RMSE of the used tie points' displacement before correction
    n_points: int  # tie points used by the fit
    n_measured: int
    n_reliable: int
    n_skipped: int
    reliability: float  # median reliability of the used points
    distinctness: float  # median distinctness of the used points
    method: str
    model_id: str
    mode: str
    search_radius: int  # pixels searched in each direction
    transform: Transform  # INPUT pixel -> reference position on the INPUT grid
    transform_map: Transform  # the same in the INPUT's map coordinates
    tiepoints: list[TiePoint]
    used: np.ndarray
    residuals: np.ndarray  # (n, 2) per tie point, input pixels
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def rmse_or_none(self) -> float | None:
        """:attr:`rmse`, None when not available (no redundant tie points)."""
        return _finite_or_none(self.rmse)

    @property
    def rmse_text(self) -> str:
        return "n/a" if not np.isfinite(self.rmse) else f"{self.rmse:.3f} px"

    @property
    def distinctness_or_none(self) -> float | None:
        """:attr:`distinctness` (the confidence of a global match), None when not measured."""
        return _finite_or_none(self.distinctness)

    def confidence(self, params: dict[str, Any]) -> dict[str, Any]:
        """The peak distinctness against the threshold it had to reach, and where that came from."""
        cal = calibration(self.method)
        return {
            "distinctness": self.distinctness_or_none,
            "min_distinctness": params.get("min_distinctness"),
            "threshold_source": ("refusal_calibration.json (make calibrate-registration)" if cal.calibrated
                                 else "fallback (method not calibrated)"),
            "meaning": "robust standard deviations of the correlation surface between the peak and the next "
                       "local maximum; global mode refuses below min_distinctness",
            "evidence": EVIDENCE.get(self.method, self.method),
        }

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
            "search_radius_px": self.search_radius,
            "shift_x": self.shift_x,
            "shift_y": self.shift_y,
            "shift_convention": "pixels of INPUT; positive = INPUT content must move right/down to match",
            "transform": self.transform.kind,
            "transform_pixel": self.transform.to_dict(),
            "transform_map": self.transform_map.to_dict(),
            "rmse_before": _finite_or_none(self.rmse_before),
            "rmse_after": _finite_or_none(self.rmse),
            "n_points_measured": self.n_measured,
            "n_points_reliable": self.n_reliable,
            "n_points_used": self.n_points,
            "n_windows_skipped": self.n_skipped,
            "median_reliability": _finite_or_none(self.reliability),
            "median_distinctness": _finite_or_none(self.distinctness),
            "confidence": self.confidence(params),
            "input_crs_wkt": input_info.crs_wkt,
            "input_geotransform": [g.c, g.a, g.b, g.f, g.d, g.e],
            "input_size": [input_info.width, input_info.height],
            "seconds": self.seconds,
            "outputs": self.outputs,
        }


def _finite_or_none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


@dataclass(frozen=True)
class Plan:
    """Where and how far to search."""

    geometry: PairGeometry
    extractor: FeatureExtractor
    radius: int  # search radius, input pixels
    search: str  # the radius in words, for messages
    templates: list[Any]


def _refuse_same_raster(geometry: PairGeometry, settings: Settings) -> None:
    input_path, reference_path = geometry.input.path, geometry.reference.path
    if not os.path.samefile(input_path, reference_path):
        return
    bands = band_list(geometry.input, settings.input_band)
    if bands == band_list(geometry.reference, settings.reference_bands):
        raise InputError(
            f"INPUT and REFERENCE are the same raster ('{input_path}'): there is nothing to register; "
            "choose the raster to correct as INPUT and another raster (e.g. an optical image) as REFERENCE."
        )


def search_radius(geometry: PairGeometry, settings: Settings) -> tuple[int, str]:
    """Search radius in input pixels and its description: MAX_SHIFT (pixels) wins over MAX_SHIFT_M."""
    size_m = pixel_size_m(geometry.input)
    if settings.max_shift is not None:
        radius, why = settings.max_shift, f"MAX_SHIFT={settings.max_shift} px"
    elif size_m is None:
        radius, why = (
            int(np.ceil(settings.max_shift_m)),
            f"MAX_SHIFT_M={settings.max_shift_m:g}, no CRS: pixels",
        )
    else:
        radius = max(MIN_SEARCH_PX, int(np.ceil(settings.max_shift_m / size_m)))
        why = f"MAX_SHIFT_M={settings.max_shift_m:g} m at {size_m:.3g} m per pixel"
    if settings.mode == "global":
        limit = global_search_limit(geometry.overlap)
        if radius > limit:
            return limit, (
                f"±{limit} px, limited by the common area of {geometry.overlap.width} x "
                f"{geometry.overlap.height} px ({why} asked for ±{radius} px)"
            )
    return radius, f"±{radius} px, {why}"


def plan_registration(
    input_path: str, reference_path: str, settings: Settings, model_path: Any, run: Run,
    corrects_input: bool = False,
) -> Plan:
    """Check the pair (and, with ``corrects_input``, that the corrected INPUT can be written), choose the
    search radius and the windows, load the method."""
    geometry = check_pair(input_path, reference_path)
    _refuse_same_raster(geometry, settings)
    if corrects_input:
        check_warpable(geometry.input, settings.transform, settings.resample)  # before any search
    extractor = make_extractor(settings.method, model_path)
    radius, search = search_radius(geometry, settings)
    if settings.mode == "global":
        templates = plan_global(geometry.overlap, radius, geometry.reference_extent)
    else:
        templates = plan_grid(geometry.overlap, settings.grid_spacing, settings.window)
        if not templates:
            raise InputError(
                f"WINDOW={settings.window} is larger than the common area of the rasters "
                f"({geometry.overlap.width} x {geometry.overlap.height} pixels); use a smaller WINDOW."
            )
    run.say(
        f"{settings.method} co-registration, {settings.mode} mode: {len(templates)} window(s), "
        f"search {search}",
        logger=logger,
    )
    return Plan(geometry, extractor, radius, search, templates)


@dataclass
class Measured:
    """Tie points of a plan, and the decimated images for the checkerboard (when asked for)."""

    points: list[TiePoint]
    skipped: int
    preview: tuple[np.ndarray, np.ndarray, float] | None


def measure_points(plan: Plan, settings: Settings, want_preview: bool, run: Run) -> Measured:
    """Read window pairs and measure one tie point in each."""
    reader = PairReader(plan.geometry, settings.input_band, settings.reference_bands)
    with reader.opened():
        points, skipped = measure(reader, plan.extractor, plan.templates, plan.radius, run)
        if not points:
            raise RegistrationError(
                "No tie point could be measured: every window is masked or nodata; choose rasters with a "
                "larger valid common area or a smaller WINDOW."
            )
        preview = reader.read_preview(1024) if want_preview else None
    return Measured(points, skipped, preview)


def fit_measured(measured: Measured, plan: Plan, settings: Settings, paths: OutputPaths) -> PointFit:
    """The trusted transform; a refused fit still writes the tie points (if asked) so the user sees why."""
    points = measured.points
    info = plan.geometry.input
    if settings.mode == "global" and len(points) == 1:
        side = min(info.width, info.height)
        return fit_single(points[0], settings.limits, plan.search, settings.method, side)
    try:
        return fit_points(points, settings.kind, settings.limits, (info.width, info.height))
    except FitRefusedError as exc:
        if paths.tiepoints is None:
            raise
        with atomic_output(paths.tiepoints) as tmp:
            write_tiepoints_gpkg(tmp, points, exc.status, np.full(len(points), np.nan), info)
        raise FitRefusedError(
            f"{exc} The {len(points)} measured tie points and why each was not used are in "
            f"'{paths.tiepoints}' (field 'status'); nothing else was written.",
            exc.status,
        ) from exc


def build_result(
    measured: Measured, fit: PointFit, plan: Plan, settings: Settings, run: Run
) -> CoregistrationResult:
    """Shift at the scene centre, residual figures and the transform in map coordinates."""
    info = plan.geometry.input
    t_map = _to_map(fit.transform, info.transform, info.width, info.height)
    sx, sy = (float(v) for v in fit.transform.displacement(np.array([[info.width / 2, info.height / 2]]))[0])
    src, dst = as_arrays(measured.points)
    used = [p for p, u in zip(measured.points, fit.used, strict=True) if u]
    result = CoregistrationResult(
        shift_x=sx,
        shift_y=sy,
        rmse=fit.rmse,
        rmse_before=rmse((dst - src)[fit.used]),
        n_points=int(fit.used.sum()),
        n_measured=len(measured.points),
        n_reliable=fit.n_reliable,
        n_skipped=measured.skipped,
        reliability=float(np.median([p.reliability for p in used])),
        distinctness=float(np.median([p.distinctness for p in used])),
        method=settings.method,
        model_id=plan.extractor.model_id,
        mode=settings.mode,
        search_radius=plan.radius,
        transform=fit.transform,
        transform_map=t_map,
        tiepoints=measured.points,
        used=fit.used,
        residuals=fit.residuals,
        seconds=0.0,
    )
    run.say(
        f"shift x {sx:+.3f} px, y {sy:+.3f} px ({fit.kind}); {result.n_points} of {len(measured.points)} tie "
        f"points used, RMSE {result.rmse_before:.3f} px before, {result.rmse_text} after",
        logger=logger,
    )
    return result


def write_outputs(
    result: CoregistrationResult,
    measured: Measured,
    fit: PointFit,
    plan: Plan,
    settings: Settings,
    paths: OutputPaths,
    t0: float,
    run: Run,
) -> None:
    """Write every requested output to temporary files, then move them all into place."""
    info = plan.geometry.input
    with ExitStack() as stack:
        tmp = {k: stack.enter_context(atomic_output(p)) for k, p in paths.items()}
        if "output" in tmp:
            how = write_corrected_raster(tmp["output"], info, result.transform_map, settings.resample,
                                         settings.resampling, run.span(0.0, 0.5))
            result.outputs["output_written_as"] = how
        run.progress(0.5)
        run.check("Co-registration")
        if "tiepoints" in tmp:
            write_tiepoints_gpkg(
                tmp["tiepoints"], measured.points, fit.status, np.hypot(*fit.residuals.T), info
            )
        if "gcp" in tmp:
            write_text(tmp["gcp"], points_file_text(measured.points, fit.used, fit.residuals, info))
        if "checkerboard" in tmp and measured.preview is not None:
            inp, ref, factor = measured.preview
            write_checkerboard(tmp["checkerboard"], inp, ref, result.transform, factor, info, run)
        run.check("Co-registration")
        result.outputs.update(dict(paths.items()))
        result.seconds = time.perf_counter() - t0
        if "report" in tmp:
            params = settings.report()
            write_report(tmp["report"], result.report(info, plan.geometry.reference.path, params))


def coregister(
    input_path: str | os.PathLike[str],
    reference_path: str | os.PathLike[str],
    *,
    method: str = DEFAULT_METHOD,
    mode: str = "global",
    grid_spacing: int = 256,
    window: int = 128,
    max_shift: int | None = None,
    max_shift_m: float = DEFAULT_MAX_SHIFT_M,
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
    reference_bands: Sequence[int] | None = None,
    limits: FitLimits | None = None,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
) -> CoregistrationResult:
    """Register INPUT onto REFERENCE and write the requested outputs (all or nothing).

    ``mode="global"`` measures one shift (the whole overlap as one window, or a
    sparse grid on large scenes); ``mode="local"`` measures a tie-point grid
    (``grid_spacing``, ``window``) and fits ``transform`` with RANSAC. The search
    radius is ``max_shift`` pixels when given, else ``max_shift_m`` metres
    converted with the INPUT's pixel size (at least :data:`MIN_SEARCH_PX`; without
    a CRS the number counts pixels); global mode limits it to half the common area.
    ``reference_bands`` are averaged (default: the mean of the first three of an
    RGB reference). Outputs whose path is None are not written.

    Raises:
        InputError: bad parameters, INPUT = REFERENCE, rasters that do not overlap, CRS on one side only.
        RegistrationError: a match at the search limit or ambiguous, too few tie points agreeing, an
            implausible transform (a refused local fit still writes the tie points, when asked for).
        ModelError: ``method="deep"`` with a model of the wrong task.
        CancelledError: ``is_cancelled()`` became true (nothing written).
    """
    t0 = time.perf_counter()
    run = Run.of(progress, is_cancelled, log)
    run.progress(0.0)
    settings = Settings(
        method, mode, transform, grid_spacing, window, max_shift, max_shift_m, resample, resampling,
        input_band, tuple(reference_bands) if reference_bands else None,
        (limits or FitLimits()).for_method(method),
    )  # fmt: skip
    settings.check()
    paths = OutputPaths(
        *(
            None if p is None else str(p)
            for p in (output_path, tiepoints_path, gcp_path, report_path, checkerboard_path)
        )
    )
    paths.check_writable()
    plan = plan_registration(str(input_path), str(reference_path), settings, model_path, run,
                             corrects_input=paths.output is not None)
    run.progress(0.02)
    measured = measure_points(plan, settings, paths.checkerboard is not None, run.span(0.02, 0.85))
    fit = fit_measured(measured, plan, settings, paths)
    result = build_result(measured, fit, plan, settings, run)
    run.check("Co-registration")
    write_outputs(result, measured, fit, plan, settings, paths, t0, run.span(0.9, 1.0))
    run.progress(1.0)
    return result


@dataclass(frozen=True)
class ApplyResult:
    output_path: str
    transform: str
    written_as: str  # "geotransform" (pixels untouched) or "warp"


def _saved_transform(src: Path, transform: str | None) -> tuple[Transform, str | None]:
    """The map-space transform and CRS of a report (.json) or tie-point GeoPackage."""
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
        return t_map, crs
    s, d, crs = read_tiepoints_gpkg(str(src))
    kind = transform or ("affine" if len(s) >= KINDS["affine"].required_points else "shift")
    check_kind(kind, TRANSFORMS)
    if len(s) < KINDS[kind].required_points:
        raise RegistrationError(
            f"'{src}' has {len(s)} used tie points; a {kind} transform needs "
            f"{KINDS[kind].required_points}; use a lower-order transform."
        )
    return fit_transform(s, d, kind), crs


def apply_transform(
    source_path: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    transform: str | None = None,
    resample: bool = False,
    resampling: str = "bilinear",
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
) -> ApplyResult:
    """Apply a saved co-registration (JSON report or tie-point GeoPackage) to another raster.

    The correction is applied in map coordinates, so the raster may have another
    pixel size than the one registered (e.g. another band), but must be in the same CRS.
    ``transform`` refits the tie points of a GeoPackage (default: affine if there
    are enough points, else shift); for a report it must be None or the saved kind.
    """
    run = Run.of(progress, is_cancelled, log)
    run.progress(0.0)
    check_choice(resampling, RESAMPLING, "resampling")
    src = Path(source_path)
    if not src.is_file():
        raise InputError(
            f"'{src}' does not exist; choose a report (.json) or tie points (.gpkg) written by "
            "sartoolbox:coregister."
        )
    check_writable(output_path)
    info = inspect_in_display_frame(input_path)
    require_grid(info, "input", "applying a co-registration", keypoints=False)
    t_map, crs = _saved_transform(src, transform)
    if not crs_equal(crs, info.crs_wkt):
        raise InputError(
            f"The co-registration was measured in another CRS than '{info.path}' has; reproject "
            "the raster to the CRS of the registered input first."
        )
    check_warpable(info, t_map.kind, resample)
    run.check("Applying the transform")
    with atomic_output(output_path) as tmp:
        how = write_corrected_raster(tmp, info, t_map, resample, resampling, run)
    run.say(f"applied a {t_map.kind} correction to {info.path} ({how})", logger=logger)
    run.progress(1.0)
    return ApplyResult(str(output_path), t_map.kind, how)
