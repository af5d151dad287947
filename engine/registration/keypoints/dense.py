"""Dense fine stage: template matching of structural features on a grid, then a robust fit.

Given an approximate INPUT -> REFERENCE transform ``h``, the prepared INPUT is
resampled onto the REFERENCE grid, both get the CFOG-style oriented-gradient
channels (:func:`.coarse.features`; on SAR-SAR pairs the linear intensities and
:func:`.sarsift.dense_features`), and square templates of the resampled INPUT on
a regular grid are searched in the REFERENCE within a radius by the
co-registration's FFT normalised cross-correlation
(:func:`engine.registration.correlation.search_shift`, sub-pixel). Each found
shift is a correspondence between the INPUT point ``h^-1(q)`` and the REFERENCE
point ``q + shift``; the requested model is fitted to them by RANSAC and least
squares, and the pass repeats with a smaller radius from the new fit
(:data:`RADII`). This is the template-matching scheme of CFOG/HOPC (Ye et al.),
which works where keypoint descriptors do not agree across modalities.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from ...errors import RegistrationError, check_choice
from ...run import QUIET, Run
from ..correlation import MIN_DISTINCTNESS
from ..ransac import ransac_matrix, refit_unless_worse
from ..transforms import KINDS, degeneracy, fit_matrix, project, reprojection_errors
from .coarse import features, masked_features
from .limits import FINE_THRESHOLD, MIN_INLIERS
from .warp import warp_onto

logger = logging.getLogger(__name__)

TEMPLATES = (64, 64, 48)
"""Side (pixels) of the templates of each pass (smaller last: matches nearer the borders)."""
TEMPLATE = TEMPLATES[0]
GRID_POINTS = 16
"""Template centres per side of the REFERENCE grid (spaced at least :data:`MIN_SPACING` pixels) ..."""
MIN_SPACING = 12
RADII = (16, 6, 3)
"""Search radius (pixels) of each pass."""
MIN_VALID = 0.9
"""Share of a template (and its search window) that must be valid in both images."""


@dataclass(frozen=True)
class LastPass:
    """Another last pass of :func:`refine` (the SAR-SAR sharpening's, ``register.SHARPEN_LAST_PASS``):
    ``template`` px templates on a grid of ``grid_points`` centres per side (spaced at least
    :data:`MIN_SPACING`), and with ``weighted`` the final least-squares fit weights each inlier match by
    its correlation peak's signal-to-noise ratio (:func:`match_weights`)."""

    template: int
    grid_points: int
    weighted: bool


def match_weights(score: np.ndarray) -> np.ndarray:
    """Weight of each template match in a weighted fit: ``r^2 / (1 - r^2)`` of its NCC peak ``r`` (clipped
    to 0 .. 0.999), the signal-to-noise ratio of the correlation, to which the precision of the peak's
    position (its inverse variance) is proportional for templates of one size."""
    r = np.clip(score, 0.0, 0.999)
    return r**2 / (1.0 - r**2)


@dataclass(frozen=True)
class DenseFit:
    """What the dense fine stage found: the model and its inlier correspondences."""

    matrix: np.ndarray
    src: np.ndarray  # INPUT pixel-corner coordinates of the inliers
    dst: np.ndarray  # REFERENCE pixel-corner coordinates
    n_matches: int  # template matches of the last pass
    sharp: int  # distinct template matches (peak >= MIN_DISTINCTNESS) of the first (widest) pass, thinned
    sharp_inliers: int  # ... that are inliers of its fit (thinned: templates half apart at least)


def _box_share(mask: np.ndarray, size: int) -> np.ndarray:
    """Share of valid pixels of every ``size x size`` window (indexed by its top-left pixel)."""
    from ..correlation import box_sums

    return box_sums(mask, size, size) / size**2


def template_matches(moved: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray], radius: int,
                     run: Run = QUIET, template: int = TEMPLATE, grid_points: int = GRID_POINTS
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Template centres ``q`` (REFERENCE pixel corners) on a grid of ``grid_points`` per side, the shift
    found for each, its distinctness and its NCC peak (:class:`engine.registration.correlation.Match`).

    ``moved`` and ``ref`` are ``(features, valid)`` on the same grid; templates or search
    windows with less than :data:`MIN_VALID` valid pixels, and shifts at the search limit, are skipped.
    """
    from ..correlation import search_shift

    (mf, mok), (rf, rok) = moved, ref
    rows, cols = mok.shape
    t, r = template, radius
    if rows < t + 2 * r or cols < t + 2 * r:
        return np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), np.zeros(0)
    share_t = _box_share(mok & rok, t)
    share_s = _box_share(rok, t + 2 * r)
    centres, shifts = [], []
    spacing = max(MIN_SPACING, max(rows, cols) // grid_points)
    for y0 in range(r, rows - t - r + 1, spacing):
        run.check("Keypoint registration")
        for x0 in range(r, cols - t - r + 1, spacing):
            if share_t[y0, x0] < MIN_VALID or share_s[y0 - r, x0 - r] < MIN_VALID:
                continue
            m = search_shift(mf[:, y0:y0 + t, x0:x0 + t], rf[:, y0 - r:y0 + t + r, x0 - r:x0 + t + r], r)
            if m.at_limit or not m.score > 0:
                continue
            centres.append((x0 + t / 2, y0 + t / 2))
            shifts.append((m.dx, m.dy, m.distinctness, m.score))
    found = np.array(shifts, float).reshape(-1, 4)
    return np.array(centres, float).reshape(-1, 2), found[:, :2], found[:, 2], found[:, 3]


FeatureMaps = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``(image, valid) -> (channels (c, h, w), where they are valid)``: what the templates compare."""

DENSE_FEATURES = ("cfog", "combined")
"""Channels of the optical-SAR dense fine stage: ``cfog`` (:func:`.coarse.features`, the default) or
``combined`` (the shift front's ``combined`` method, :class:`..shift.combined.CombinedFeatures`: the
learned embedding of the bundled ``Task.EMBED`` model and the CFOG channels stacked at equal energy)."""


def dense_feature_maps(name: str = "cfog") -> FeatureMaps:
    """The :data:`DENSE_FEATURES` channels ``name`` as a :data:`FeatureMaps` (the model is loaded once, here;
    :class:`RegistrationError` when it is not bundled): ``combined`` is zero outside the eroded validity, as
    :func:`.coarse.features` (an option, not the default: more wrong answers on the calibration split;
    decision record 2026-12-07-keypoints-deep-dense.md)."""
    if check_choice(name, DENSE_FEATURES, "dense feature kind") == "cfog":
        return features
    from ..shift.combined import combined_features
    from ..shift.deep import find_embed_model

    model = find_embed_model()
    if model is None:  # the shift front's own message names its METHOD parameter
        raise RegistrationError("dense_features='combined' needs the bundled registration (Task.EMBED) "
                                "model, which was not found; use dense_features='cfog' (the default).")
    return partial(masked_features, combined_features(model))


def refine(inp: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray], h: np.ndarray, kind: str,
           run: Run = QUIET, feature_maps: FeatureMaps = features, affine_choice: bool = True,
           first_pass: int = 0, last_pass: LastPass | None = None) -> DenseFit:
    """Refine ``h`` (INPUT -> REFERENCE) by :data:`RADII` passes of template matching (see the module doc),
    from the pass ``first_pass`` on (a start known to be closer than the widest radii skips those passes;
    the first pass run is the one that fits an affine to a homography request and counts the sharp matches).
    ``last_pass`` replaces the last pass's templates and grid (:data:`TEMPLATES`, :data:`GRID_POINTS`) and
    may weight its fit (:class:`LastPass`; a weighted fit is of ``kind``, without the affine choice).

    ``inp`` and ``ref`` are ``(image, valid)`` as ``feature_maps`` takes them (by default the prepared
    images and their CFOG channels, :func:`.coarse.features`). With ``affine_choice`` a homography
    request may end as an affine (:func:`_select`); without, each pass fits ``kind``. Raises
    :class:`RegistrationError` when a pass leaves fewer than :data:`MIN_INLIERS` inliers or the fit is
    degenerate.
    """
    (img, valid), (rimg, rvalid) = inp, ref
    size = (float(img.shape[1]), float(img.shape[0]))
    ref_feats = feature_maps(rimg, rvalid)
    fit: DenseFit | None = None
    sharp = sharp_inliers = 0
    passes = len(RADII) - first_pass
    for i, radius in enumerate(RADII[first_pass:]):
        run.check("Keypoint registration")
        warped = warp_onto(img, valid, h, (rimg.shape[0], rimg.shape[1]))
        run.check("Keypoint registration")
        moved = feature_maps(*warped)
        span = run.span(i / passes, (i + 1) / passes)
        last = last_pass if i == passes - 1 else None
        q, d, distinct, score = template_matches(
            moved, ref_feats, radius, span, *((last.template, last.grid_points) if last is not None
                                              else (TEMPLATES[first_pass + i], GRID_POINTS)))
        del warped, moved  # the next pass's channels are not computed beside these (peak memory)
        src, dst = project(np.linalg.inv(h), q), q + d
        pass_kind = "affine" if i == 0 and kind == "homography" else kind  # fewer chance agreements
        enough = len(q) >= KINDS[pass_kind].min_sample  # the kind this pass fits, not the one asked for
        found = ransac_matrix(src, dst, pass_kind, FINE_THRESHOLD, size) if enough else None
        n_inliers = 0 if found is None else found.n_inliers
        if found is None or n_inliers < MIN_INLIERS:
            raise RegistrationError(
                f"Only {n_inliers} inlier match(es) among {len(q)} template matches of the dense fine stage, "
                f"at least {MIN_INLIERS} needed; nothing was written. Check that the images overlap and "
                "show the same area; try TRANSFORM=similarity or affine.")
        if i == 0:
            distinct_enough = distinct >= MIN_DISTINCTNESS
            sharp = len(_thinned(q[distinct_enough]))
            sharp_inliers = len(_thinned(q[found.inliers & distinct_enough]))
        weights = match_weights(score[found.inliers]) if last is not None and last.weighted else None
        if weights is not None:
            refit = fit_matrix(src[found.inliers], dst[found.inliers], kind, weights)
        else:
            refit = (_select if affine_choice else fit_matrix)(src[found.inliers], dst[found.inliers], kind)
        h = refit_unless_worse(refit, found, src, dst, weights)
        src, dst = src[found.inliers], dst[found.inliers]
        problem = degeneracy(h, *size)
        if problem is not None:
            raise RegistrationError(f"The fitted {kind} is refused: {problem}; nothing was written. "
                                    "Check that both images show the same area, or try TRANSFORM=similarity.")
        fit = DenseFit(h, src, dst, len(q), sharp, sharp_inliers)
        logger.debug("dense pass %d (radius %d): %d of %d template matches are inliers", i, radius,
                     len(src), len(q))
    assert fit is not None
    return fit


def _thinned(points: np.ndarray) -> np.ndarray:
    """Points kept greedily at least half a template apart (their templates mostly do not overlap)."""
    kept = np.empty((len(points), 2))
    n = 0
    for p in points:
        if (np.abs(kept[:n] - p).max(axis=1) >= TEMPLATE / 2).all():
            kept[n] = p
            n += 1
    return kept[:n]


def held_out_error(src: np.ndarray, dst: np.ndarray, kind: str) -> float:
    """Mean squared error of ``kind`` fits predicting each quadrant (about the median) from the others."""
    cx, cy = np.median(src, axis=0)
    quadrant = (src[:, 0] > cx).astype(int) + 2 * (src[:, 1] > cy)
    errors = []
    for k in range(4):
        test = quadrant == k
        if test.sum() == 0 or (~test).sum() < 2 * KINDS[kind].min_sample:
            return float("inf")
        h = fit_matrix(src[~test], dst[~test], kind)
        errors.append(reprojection_errors(h, src[test], dst[test]) ** 2)
    return float(np.mean(np.concatenate(errors)))


def _select(src: np.ndarray, dst: np.ndarray, kind: str) -> np.ndarray:
    """The ``kind`` fit; for a homography the affine fit instead when it predicts held-out quadrants of
    the matches better (the perspective terms extrapolate badly from noisy, clustered matches)."""
    h = fit_matrix(src, dst, kind)
    if kind != "homography" or len(src) < 4 * KINDS[kind].min_sample:
        return h
    if held_out_error(src, dst, "affine") <= held_out_error(src, dst, kind):
        return fit_matrix(src, dst, "affine")
    return h
