"""From measured tie points to a trusted transform, or a refusal that says why.

Global mode with one window trusts its single match only when the peak is
inside the search range and stands clearly above every other peak
(:attr:`FitLimits.min_distinctness`). With several tie points, the reliable
ones are fitted by RANSAC, and the fit is kept only when enough of them agree
(:data:`MIN_INLIERS`, :data:`MIN_INLIER_SHARE`) and the
transform is plausible: no larger scale change or rotation than
:class:`FitLimits` allows (the reference is already resampled onto the
input's grid, so the expected transform is close to a shift).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...errors import InputError, RegistrationError
from ..ransac import PolynomialModel, ransac
from ..tiepoints import TiePoint, as_arrays
from ..transforms import KINDS, Transform, distortion, fit_transform, residuals, rmse
from .calibration import calibration, small_scene_advice

MIN_INLIERS = {"shift": 3, "affine": 6, "poly2": 12, "poly3": 20}
"""Tie points that must agree on a transform (RANSAC inliers) before it is trusted: about twice the
points that determine it, so that a chance agreement of a minimal sample is not taken for a fit."""
MIN_INLIER_SHARE = 0.4
"""Share of the reliable tie points that must agree on the transform."""
LOWER = {"affine": "shift", "poly2": "affine", "poly3": "poly2"}
"""The next lower-order transform, suggested when a fit is refused."""
MIN_RELIABILITY = 1.1
"""Tie points whose peak is not this much higher than the second peak are not used (local mode)."""
OUTLIER_THRESHOLD = 2.0
"""RANSAC inlier threshold (input pixels)."""
MAX_SCALE_CHANGE = 0.03
"""Largest scale change (relative, per axis) a fitted transform may make (the CFOG/HOPC pair A, two
non-georeferenced images of one scene, needs 2.2 %)."""
MAX_ROTATION = 2.0
"""Largest rotation (degrees) a fitted transform may make."""

USED, OUTLIER, AMBIGUOUS, AT_LIMIT = "used", "outlier", "ambiguous", "at search limit"
NOT_FITTED = "reliable, no fit"
_CANDIDATE = "candidate"


@dataclass(frozen=True)
class FitLimits:
    """Thresholds that decide whether tie points and a fitted transform are trusted."""

    min_reliability: float = MIN_RELIABILITY
    outlier_threshold: float = OUTLIER_THRESHOLD
    min_distinctness: float | None = None  # None: the method's calibrated threshold (see for_method)
    max_scale_change: float = MAX_SCALE_CHANGE
    max_rotation: float = MAX_ROTATION

    def for_method(self, method: str) -> FitLimits:
        """These limits with the calibrated distinctness threshold of ``method`` where none was set."""
        if self.min_distinctness is not None:
            return self
        return replace(self, min_distinctness=calibration(method).min_distinctness)

    def check(self) -> None:
        if not self.outlier_threshold > 0:
            raise InputError(f"The outlier threshold must be positive (got {self.outlier_threshold} px).")
        if not (self.max_scale_change > 0 and self.max_rotation > 0):
            raise InputError(
                "MAX_SCALE_CHANGE and MAX_ROTATION must be positive; use e.g. 2 % and 2 degrees, "
                "more when the rasters really differ in scale or orientation."
            )


@dataclass
class PointFit:
    """A transform fitted to tie points, with each point's part in it."""

    kind: str
    transform: Transform
    used: np.ndarray  # (n,) bool
    residuals: np.ndarray  # (n, 2) per tie point, input pixels
    n_reliable: int
    status: list[str]

    @property
    def rmse(self) -> float:
        """RMSE of the used points after the fit; NaN when they do not over-determine the transform."""
        n = int(self.used.sum())
        return rmse(self.residuals[self.used]) if n > KINDS[self.kind].min_sample else float("nan")


class FitRefusedError(RegistrationError):
    """No trustworthy transform; ``status`` says what happened to each tie point."""

    def __init__(self, message: str, status: list[str]) -> None:
        super().__init__(message)
        self.status = status


def point_status(points: list[TiePoint], limits: FitLimits) -> list[str]:
    """Status of each tie point before the fit: at search limit, ambiguous, or a candidate for the fit."""
    out = []
    for p in points:
        if p.at_limit:
            out.append(AT_LIMIT)
        elif p.reliability < limits.min_reliability:
            out.append(AMBIGUOUS)
        else:
            out.append(_CANDIDATE)
    return out


def _final(status: list[str], used: np.ndarray | None) -> list[str]:
    """Candidates become used or outliers (or "reliable, no fit" when no transform was fitted)."""
    if used is None:
        return [NOT_FITTED if s == _CANDIDATE else s for s in status]
    return [(USED if u else OUTLIER) if s == _CANDIDATE else s for s, u in zip(status, used, strict=True)]


def fit_single(point: TiePoint, limits: FitLimits, search: str, method: str = "",
               side_px: int = 0) -> PointFit:
    """Global mode, one window: the match itself, if its peak is inside the range and distinct (at least
    ``limits.min_distinctness``, else the calibrated threshold of ``method``). A refusal on a small scene
    (shorter side ``side_px``) says what size would work."""
    threshold = limits.for_method(method).min_distinctness
    assert threshold is not None
    if point.at_limit:
        raise RegistrationError(
            f"The best match lies at the edge of the search range ({search}): the misregistration is "
            "probably larger. Increase MAX_SHIFT_M (or MAX_SHIFT), or pre-align the rasters; nothing was "
            "written." + small_scene_advice(method, side_px)
        )
    if not point.distinctness >= threshold:
        raise RegistrationError(
            f"The match is ambiguous: its peak stands {point.distinctness:.2f} robust standard deviations "
            f"above the next one (at least {threshold:g} needed; search {search}), so the "
            "shift would be a guess; nothing was written. If the misregistration is known to be smaller, "
            "narrow the search (MAX_SHIFT_M or MAX_SHIFT); otherwise try the other METHOD, other "
            "reference bands, or MODE=local on a larger common area." + small_scene_advice(method, side_px)
        )
    src, dst = as_arrays([point])
    t = fit_transform(src, dst, "shift")
    return PointFit("shift", t, np.ones(1, bool), residuals(t, src, dst), 1, [USED])


def robust_fit(src: np.ndarray, dst: np.ndarray, kind: str, threshold: float) -> tuple[Transform, np.ndarray]:
    """The :func:`..ransac.ransac` fit of ``kind``, refitted by least squares on its inliers, and the mask.

    Raises:
        RegistrationError: no minimal, well-spread sample is supported by the other points.
    """
    need = KINDS[kind].min_sample
    if len(src) < need:
        raise RegistrationError(f"A {kind} transform needs at least {need} points, got {len(src)}.")
    model = PolynomialModel.of(kind, src)
    found = ransac(src, dst, model, threshold)
    if found is not None and found.n_inliers >= need:
        inliers = found.inliers
    elif len(src) == need and model.samples_ok(src[None], dst[None])[0]:
        inliers = np.ones(need, bool)  # exactly determined: the one sample is the fit, nothing votes
    else:
        raise RegistrationError(
            f"No consistent {kind} transform was found among {len(src)} tie points (the points are collinear "
            "or disagree by more than the outlier threshold); use a lower-order transform, a larger WINDOW "
            "or a larger outlier threshold."
        )
    return fit_transform(src[inliers], dst[inliers], kind, model.norm), inliers


def _refuse(message: str, status: list[str], used: np.ndarray | None = None) -> FitRefusedError:
    return FitRefusedError(message, _final(status, used))


def fit_points(points: list[TiePoint], kind: str, limits: FitLimits, frame: tuple[float, float]) -> PointFit:
    """Fit ``kind`` robustly to several tie points and check it (see module doc).

    ``frame`` is the INPUT's (width, height), over which the distortion is checked.
    """
    n = len(points)
    status = point_status(points, limits)
    at_limit = sum(s == AT_LIMIT for s in status)
    if at_limit > n / 2:
        raise _refuse(
            f"The best match lies at the edge of the search range in {at_limit} of {n} windows: the "
            "misregistration is probably larger than the search; increase MAX_SHIFT_M or MAX_SHIFT (and "
            "WINDOW) or pre-align the rasters.",
            status,
        )
    reliable = np.array([s == _CANDIDATE for s in status])
    hint = f"use a lower-order transform (e.g. TRANSFORM={LOWER[kind]}) or " if kind in LOWER else ""
    if reliable.sum() < KINDS[kind].required_points:
        raise _refuse(
            f"Only {int(reliable.sum())} reliable tie points were found ({n} measured), but a {kind} "
            f"transform needs at least {KINDS[kind].required_points}; {hint}a larger WINDOW or a smaller "
            "GRID_SPACING.",
            status,
        )
    src, dst = as_arrays(points)
    idx = np.flatnonzero(reliable)
    t, inl = robust_fit(src[idx], dst[idx], kind, limits.outlier_threshold)
    used = np.zeros(n, dtype=bool)
    used[idx[inl]] = True
    need = max(MIN_INLIERS[kind], int(np.ceil(MIN_INLIER_SHARE * reliable.sum())))
    if used.sum() < need:
        raise _refuse(
            f"Only {int(used.sum())} of {int(reliable.sum())} reliable tie points ({n} measured) agree on "
            f"one {kind} transform; at least {need} are needed ({MIN_INLIERS[kind]} and "
            f"{MIN_INLIER_SHARE:.0%} of the reliable ones); {hint}a larger WINDOW or a smaller GRID_SPACING.",
            status,
            used,
        )
    scale, rotation = distortion(t, *frame)
    if scale > limits.max_scale_change or rotation > limits.max_rotation:
        raise _refuse(
            f"The fitted {kind} transform changes the pixel size by up to {100 * scale:.1f} % and rotates "
            f"by up to {rotation:.1f} degrees (limits {100 * limits.max_scale_change:g} % and "
            f"{limits.max_rotation:g} degrees): its {int(used.sum())} tie points probably include wrong "
            f"matches; {hint}a denser grid, or raise MAX_SCALE_CHANGE / "
            "MAX_ROTATION if the rasters really differ in scale or orientation.",
            status,
            used,
        )
    return PointFit(kind, t, used, residuals(t, src, dst), int(reliable.sum()), _final(status, used))
