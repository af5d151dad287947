"""Entry point :func:`keypoint_register`: two rasters in, a registration and its outputs out.

The INPUT and the REFERENCE are read on their own grids (no resampling before
matching: rotation and scale between them are what keypoints are for). The
result ``pixel_transform`` maps INPUT pixel-corner coordinates ``(col, row)`` to
REFERENCE pixel-corner coordinates (GDAL's convention: pixel centres at +0.5),
whatever the two grids' CRS. All requested outputs are written, or none.
"""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, check_choice
from ...input_kind import auto_kind
from ...raster_io import RasterInfo, atomic_output, check_writable, inspect_raster, open_raster, read_window
from ...run import IsCancelled, Log, Progress, Run
from ...tiling import Window
from ..georef import check_pair
from ..outputs import points_file_text, write_report, write_text, write_tiepoints_gpkg
from ..prepare import KINDS, prepare_image
from ..tiepoints import TiePoint
from ..transforms import MATRIX_KINDS, check_kind, project
from .classical import ClassicalDetector
from .detect import Detector
from .outputs import check_resampling, write_matches_png, write_on_reference_grid
from .register import MAX_KEYPOINTS, OPTICAL_SAR_METHODS, ImageSide, Registration, register_images

logger = logging.getLogger(__name__)

REPORT_VERSION = 1
KIND_CHOICES = ("auto", *KINDS)
MAX_PIXELS = 4096 * 4096
"""Largest image (pixels) registered: both images are read whole and the stages hold about 200 bytes per
pixel (884 MB peak at 2000 x 2000, about 3.4 GB at this size; ``python -m benchmarks.keypoints_memory``)."""


def check_size(info: RasterInfo, role: str) -> None:
    """Refuse an image above :data:`MAX_PIXELS`, saying what to do instead."""
    if info.width * info.height > MAX_PIXELS:
        raise InputError(
            f"The {role} '{Path(info.path).name}' has {info.width} x {info.height} px; keypointregister "
            f"reads both images whole and takes at most {MAX_PIXELS / 1e6:.1f} Mpix each (about 3.4 GB of "
            "memory at that size). Crop both rasters to the area they share, or decimate them (e.g. "
            "gdal_translate -outsize 50% 50%); for a shift or affine correction of a large scene use "
            "coregister, which works on any size."
        )


@dataclass
class KeypointResult:
    """What :func:`keypoint_register` found and wrote."""

    registration: Registration
    input: RasterInfo
    reference: RasterInfo
    written: dict[str, str]

    @property
    def n_keypoints(self) -> int:
        """Keypoints of the INPUT and the REFERENCE together."""
        return int(sum(self.registration.n_keypoints))

    @property
    def n_matches(self) -> int:
        return self.registration.n_matches

    @property
    def n_inliers(self) -> int:
        return self.registration.n_inliers

    @property
    def rmse(self) -> float:
        return self.registration.rmse

    def report(self, params: dict[str, Any]) -> dict[str, Any]:
        r = self.registration
        return {
            "report_version": REPORT_VERSION,
            "tool": "sartoolbox:keypointregister",
            "input": self.input.path,
            "reference": self.reference.path,
            "pixel_transform": [[float(v) for v in row] for row in r.matrix],
            "pixel_transform_convention": (
                "3x3 row-major; maps INPUT pixel coordinates (col, row) to REFERENCE pixel coordinates, "
                "(0, 0) = top-left corner of the first pixel, pixel centres at +0.5 (GDAL)"
            ),
            "coarse_pixel_transform": [[float(v) for v in row] for row in r.coarse_matrix],
            "transform": r.kind,
            "fitted_transform": r.fitted_kind,
            "corner_uncertainty_px": corner_report(r.corner_uncertainty),
            "corner_uncertainty_note": (
                "bootstrap RMS deviation (REFERENCE pixels) of each INPUT corner's mapped position over "
                "resamples of the inlier matches: a lower bound of the error (matches are spatially "
                "correlated)"
            ),
            "method": r.method,
            "model_id": r.model_id,
            "n_keypoints": {"input": r.n_keypoints[0], "reference": r.n_keypoints[1]},
            "n_matches": r.n_matches,
            "n_inliers": r.n_inliers,
            "rmse_px": r.rmse,
            "stages": r.stages,
            "coarse_estimate": r.coarse,
            "seconds": r.seconds,
            "parameters": params,
            "outputs": self.written,
        }


CORNER_NAMES = ("top_left", "top_right", "bottom_right", "bottom_left")
"""Keys of the report's ``corner_uncertainty_px`` (the order of :func:`.uncertainty.image_corners`)."""


def corner_report(values: np.ndarray) -> dict[str, float | None]:
    """Per-corner figures keyed by :data:`CORNER_NAMES` (None where not known)."""
    return {name: float(v) if np.isfinite(v) else None for name, v in zip(CORNER_NAMES, values, strict=True)}


READ_ROWS = 512
"""Rows read per step (progress and cancel between steps)."""


def _read_image(info: RasterInfo, bands: list[int], run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``bands`` (float32) and the validity mask (finite, not nodata in any band), read in strips
    of :data:`READ_ROWS` rows."""
    data = np.empty((len(bands), info.height, info.width), np.float32)
    with open_raster(info.path) as src:
        for top in run.steps(info.height, READ_ROWS, "Keypoint registration"):
            rows = min(READ_ROWS, info.height - top)
            data[:, top : top + rows] = read_window(src, bands, Window(top, 0, rows, info.width), fill=np.nan)
    valid = np.isfinite(data).all(axis=0)
    if info.nodata is not None and not np.isnan(info.nodata):
        valid &= ~(data == info.nodata).any(axis=0)
    img = np.where(valid, data.mean(axis=0), 0.0).astype(np.float32)
    return img, valid


def resolve_kind(kind: str, path: str | os.PathLike[str], bands: list[int], role: str, run: Run) -> str:
    """What an image holds: ``kind``, or for ``auto`` :func:`engine.input_kind.auto_kind` (a sample of
    the values: dB when negative or spread like dB - never optical -, else amplitude for the INPUT; a
    REFERENCE of several bands or without speckle is optical)."""
    check_choice(kind, KIND_CHOICES, "image kind")
    return kind if kind != "auto" else auto_kind(path, bands, role, run)


def make_detector(model_path: str | os.PathLike[str] | None) -> Detector:
    """The classical detector, or the learned one of a ``keypoints`` ONNX model."""
    if model_path is None or str(model_path) == "":
        return ClassicalDetector()
    from .learned import LearnedDetector

    return LearnedDetector(model_path)


def _check_outputs(outputs: dict[str, str | os.PathLike[str] | None]) -> dict[str, Path]:
    chosen = {k: Path(p) for k, p in outputs.items() if p is not None and str(p) != ""}
    for p in chosen.values():
        check_writable(p)
    return chosen


def keypoint_register(
    input_path: str | os.PathLike[str],
    reference_path: str | os.PathLike[str],
    *,
    output_path: str | os.PathLike[str] | None = None,
    tiepoints_path: str | os.PathLike[str] | None = None,
    gcp_path: str | os.PathLike[str] | None = None,
    matches_png_path: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    band: int = 1,
    reference_bands: list[int] | None = None,
    model_path: str | os.PathLike[str] | None = None,
    max_keypoints: int = MAX_KEYPOINTS,
    transform: str = "homography",
    resampling: str = "bilinear",
    input_kind: str = "auto",
    reference_kind: str = "auto",
    optical_sar_method: str = "sar-harris",
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
) -> KeypointResult:
    """Register INPUT onto REFERENCE by keypoints and write the requested outputs (all or nothing).
    ``optical_sar_method``: the classical method's optical-SAR keypoints, 'sar-harris' (default) or 'rift'
    (:data:`.register.OPTICAL_SAR_METHODS`).

    Raises:
        InputError: bad parameters or bands, rasters that do not overlap on the ground.
        RegistrationError: too few keypoints, too few inliers, a degenerate transform.
        ModelError: ``model_path`` is not a ``keypoints`` model.
        CancelledError: the user cancelled (nothing written).
    """
    run = Run.of(progress, is_cancelled, log)
    run.progress(0.0)
    check_kind(transform, MATRIX_KINDS)
    check_resampling(resampling)
    check_choice(optical_sar_method, OPTICAL_SAR_METHODS, "optical-SAR keypoint method")
    if not 16 <= max_keypoints <= 100_000:
        raise InputError(f"MAX_KEYPOINTS must be between 16 and 100000, got {max_keypoints}.")
    outputs = _check_outputs({"output": output_path, "tiepoints": tiepoints_path, "gcp": gcp_path,
                              "matches_png": matches_png_path, "report": report_path})
    inp, ref = inspect_raster(input_path), inspect_raster(reference_path)
    ref_bands = list(reference_bands) if reference_bands else list(range(1, ref.count + 1))
    inp.check([band])
    ref.check(ref_bands)
    check_size(inp, "INPUT")
    check_size(ref, "REFERENCE")
    if inp.crs_wkt and ref.crs_wkt:
        check_pair(str(input_path), str(reference_path))  # refuses rasters that do not overlap on the ground
    detector = make_detector(model_path)
    run.say(f"Keypoint registration ({detector.name}, {detector.model_id}), {transform}", logger=logger)
    kinds = (resolve_kind(input_kind, input_path, [band], "INPUT", run),
             resolve_kind(reference_kind, reference_path, ref_bands, "REFERENCE", run))
    img_in, ok_in = _read_image(inp, [band], run.span(0.0, 0.02))
    img_ref, ok_ref = _read_image(ref, ref_bands, run.span(0.02, 0.05))
    sides = (ImageSide(img_in, ok_in, kinds[0], "INPUT"), ImageSide(img_ref, ok_ref, kinds[1], "REFERENCE"))
    reg = run.background("Keypoint registration", register_images, *sides, detector, transform, max_keypoints,
                         run.span(0.05, 0.85), optical_sar_method)
    run.say(f"{reg.n_inliers} inliers of {reg.n_matches} matches, RMSE {reg.rmse:.2f} px", logger=logger)
    written = {k: str(p) for k, p in outputs.items()}
    result = KeypointResult(reg, inp, ref, written)
    params = {"band": band, "reference_bands": ref_bands, "model": str(model_path or ""),
              "max_keypoints": max_keypoints, "transform": transform, "resampling": resampling,
              "input_kind": sides[0].kind, "reference_kind": sides[1].kind,
              "optical_sar_method": optical_sar_method}
    _write_outputs(result, outputs, sides, params, resampling, run.span(0.85, 1.0))
    return result


def tie_points(reg: Registration) -> list[TiePoint]:
    """The inlier matches as co-registration tie points (``ref_x, ref_y`` in REFERENCE pixels)."""
    return [TiePoint(float(x), float(y), float(u - x), float(v - y), 1.0, 1.0, False)
            for (x, y), (u, v) in zip(reg.src, reg.dst, strict=True)]


def _write_outputs(result: KeypointResult, outputs: dict[str, Path], sides: tuple[ImageSide, ImageSide],
                   params: dict[str, Any], resampling: str, run: Run) -> None:
    reg = result.registration
    points = tie_points(reg)
    used = np.ones(len(points), bool)
    residual_xy = reg.dst - project(reg.matrix, reg.src)  # dst - T(src), as the shift front's residuals
    with ExitStack() as stack:
        tmp = {k: stack.enter_context(atomic_output(p)) for k, p in outputs.items()}
        if "output" in tmp:
            write_on_reference_grid(tmp["output"], result.input, result.reference, reg.matrix, resampling,
                                    run)
        if "tiepoints" in tmp:
            write_tiepoints_gpkg(tmp["tiepoints"], points, used, np.hypot(*residual_xy.T), result.input,
                                 reference=result.reference)
        if "gcp" in tmp:
            write_text(tmp["gcp"], points_file_text(points, used, residual_xy, result.reference))
        if "matches_png" in tmp:
            a, b = sides
            write_matches_png(tmp["matches_png"], prepare_image(a.values, a.kind, a.valid), a.valid,
                              prepare_image(b.values, b.kind, b.valid), b.valid, reg.src, reg.dst)
        if "report" in tmp:
            write_report(tmp["report"], result.report(params))
        run.check("Keypoint registration")
