"""Keypoint registration of two in-memory images: extract, match, filter, coarse fit, fine fit.

1. Keypoints of both prepared images (:mod:`.detect`), each with a primary and a check descriptor.
2. Putative matches: mutual nearest neighbours with a ratio test, then the check
   descriptors must agree (:func:`.matching.agree`).
3. Coarse: RANSAC of a similarity (or affine, for affine and homography requests)
   with a loose threshold.
4. Fine, twice: every INPUT keypoint is matched again among the REFERENCE keypoints
   near its predicted position (local search), and the requested model is fitted by
   RANSAC with a tight threshold, then by least squares on its inliers.
5. Dense: keypoint descriptors rarely agree between optical and SAR, so the
   similarity is also searched directly over rotations and scales on structural
   features (:mod:`.coarse`). The fit of steps 1-4 and the :data:`DENSE_STARTS` best
   dense candidates each start the dense fine stage (:mod:`.dense`: template
   matching on a grid, RANSAC, least squares); a start counts when enough distinct
   template matches of its widest pass agree (:data:`MIN_SHARP_INLIERS`), the one with
   the most inliers wins, and two different fits with similar support are refused
   as ambiguous. When none counts, the keypoint stage's error is raised; with the option
   ``finer_search``, the search first runs again on finer levels (:data:`.coarse.FINER_LEVELS`).

With the classical method (no MODEL) and an optical image on either side, steps 1-4 use SAR-Harris
keypoints with oriented-gradient histograms (:mod:`.classical`, ``sar-harris-ogh-v1``) by default, or,
with ``optical_sar_method="rift"``, RIFT keypoints (:mod:`.rift`: phase congruency corners and edges,
maximum-index-map descriptors; no check descriptor) whose fit is a similarity, whatever the requested
model: their matches are few and noisy, and a 2-point sample finds their consensus best (chosen on the
calibration split, ``benchmarks/investigations/rift_calibration.py``); the dense fine stage fits the
requested model. RIFT is not the default: on every benchmark and calibration case measured it gives the
former path's answer, at more CPU time and memory (decision record 2026-12-07-keypoints-rift.md).

When both images are SAR and the method is the classical one, steps 1-4 use SAR-SIFT
keypoints (:mod:`.sarsift`: speckle-robust gradients and descriptors, full orientation;
no check descriptor); their fit is refused when the matches left out of it hold a second
consensus with nearly as much support, and otherwise sharpened by the dense fine stage on
speckle-robust ROEWA channels of the linear intensities (:func:`.sarsift.dense_features`; its
last pass denser, with smaller templates and a weighted fit: :data:`SHARPEN_LAST_PASS`),
which it must not move by more than the keypoint inliers' tolerance. Only when the keypoint
stage fails does the dense search of step 5 run (its coarse search from scratch).

The result maps INPUT pixel-corner coordinates to REFERENCE pixel-corner coordinates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ...errors import RegistrationError, check_choice
from ...run import QUIET, Run
from ..prepare import prepare_image
from ..ransac import RansacResult, ransac_matrix, refit_unless_worse
from ..transforms import (
    KINDS,
    MATRIX_KINDS,
    check_kind,
    corner_error,
    degeneracy,
    fit_matrix,
    project,
    reprojection_errors,
)
from . import rift, sarsift
from .coarse import COARSE_SIDE, FINER_LEVELS, GRID_SIDE, features, search
from .dense import DenseFit, FeatureMaps, LastPass, dense_feature_maps, refine
from .detect import Detector, Keypoints, extract
from .limits import FINE_THRESHOLD, MIN_INLIERS
from .matching import Matches, agree, guided, mutual_nearest
from .uncertainty import corner_uncertainty

logger = logging.getLogger(__name__)

MAX_KEYPOINTS = 2000
"""Default keypoint budget per image (all pyramid levels together)."""
MIN_KEYPOINTS = 8
COARSE_THRESHOLD = 8.0
"""RANSAC threshold of the coarse stage (REFERENCE pixels)."""
FINE_RADIUS = (8.0, 4.0)
"""Local search radius of each fine pass (REFERENCE pixels)."""
DENSE_STARTS = 2
"""Best distinct candidates of the dense coarse search that the fine stage starts from."""
SAME_START_PX = 8.0
"""A start whose corners lie within this (REFERENCE pixels) of an accepted fit's is not refined again."""
MIN_SHARP_INLIERS = 4
MIN_SHARP_SHARE = 0.5
"""A dense fit counts when at least MIN_SHARP_INLIERS, and this share, of the distinct template matches
of its first (widest) pass are inliers (overlapping templates make their other matches agree by chance)."""
SAR_SIFT_RATIO = 0.9
"""Ratio test of the SAR-SIFT descriptors (SAR-SAR pairs)."""
AMBIGUOUS_SHARE = 0.7
"""A different fit with at least this share of the best fit's inliers makes the result ambiguous."""
OPTICAL_SAR_METHODS = ("sar-harris", "rift")
"""Keypoints of the classical method's optical-SAR path: SAR-Harris (:mod:`.classical`, the default) or
RIFT (:mod:`.rift`)."""
SHARPEN_FIRST_PASS = 1
"""The dense sharpening of a SAR-SIFT fit starts at this pass of :data:`.dense.RADII` (radius 6 px): the
fit is within the keypoint inliers' tolerance, and the radius-16 pass found nothing more on the
calibration split (mean corner error 0.376 vs 0.377 px, 0.59 vs 0.95 CPU s for the stage)."""
SHARPEN_LAST_PASS = LastPass(template=32, grid_points=32, weighted=True)
"""The sharpening's last pass (radius 3): templates of 32 px on a grid of 32 per side (at 512 px four times
the matches of the optical-SAR path's 48 px on 16; fewer below 384 px, where the spacing stops at
:data:`.dense.MIN_SPACING`), fitted by least squares weighted by each match's NCC
signal-to-noise ratio (:func:`.dense.match_weights`); calibration: 0.377 -> 0.23 px mean corner error
(docs/decisions/2026-12-07-keypoints-sar-precision.md)."""


@dataclass
class ImageSide:
    """One image of a pair: values, validity, what it holds ('intensity', 'amplitude', 'db', 'optical')."""

    values: np.ndarray
    valid: np.ndarray
    kind: str
    role: str  # 'INPUT' or 'REFERENCE', for messages

    @property
    def modality(self) -> str:
        return "optical" if self.kind == "optical" else "sar"


def fitted_kind(kind: str, matrix: np.ndarray) -> str:
    """The model ``matrix`` is: a homography request answered by an affine fit (:mod:`.dense`) is 'affine'."""
    affine_row = kind == "homography" and np.allclose(matrix[2], [0.0, 0.0, 1.0], atol=1e-12)
    return "affine" if affine_row else kind


@dataclass
class Registration:
    """What :func:`register_images` found."""

    matrix: np.ndarray  # INPUT pixel-corner coordinates -> REFERENCE pixel-corner coordinates
    kind: str
    coarse_matrix: np.ndarray
    src: np.ndarray  # (n, 2) INPUT positions of the inlier matches
    dst: np.ndarray  # (n, 2) REFERENCE positions
    residuals: np.ndarray  # (n,) reprojection errors of the inliers (REFERENCE pixels)
    n_keypoints: tuple[int, int]
    n_matches: int  # putative matches of the fine stage's last pass
    method: str
    model_id: str
    seconds: float
    stages: dict[str, int] = field(default_factory=dict)
    coarse: str = ""  # where the coarse estimate of the chosen fit came from: 'keypoints' or 'dense'
    corner_uncertainty: np.ndarray = field(default_factory=lambda: np.full(4, np.nan))
    """(4,) bootstrap RMS deviation (REFERENCE pixels) of the INPUT's corners (:mod:`.uncertainty`), in the
    order top-left, top-right, bottom-right, bottom-left."""

    @property
    def fitted_kind(self) -> str:
        return fitted_kind(self.kind, self.matrix)

    @property
    def n_inliers(self) -> int:
        return len(self.src)

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean(self.residuals**2))) if len(self.residuals) else float("nan")


def _keypoints(side: ImageSide, prepared: np.ndarray, detector: Detector | str, max_keypoints: int,
               run: Run) -> Keypoints:
    """Keypoints of one side: SAR-SIFT's (:mod:`.sarsift`) or RIFT's (:mod:`.rift`) when ``detector``
    names them, else the detector's."""
    if detector == sarsift.MODEL_ID:
        intensity, ok = sarsift.linear_intensity(side.values, side.kind, side.valid)
        kps = sarsift.extract(intensity, ok, max_keypoints, run)
    elif detector == rift.MODEL_ID:
        kps = rift.extract(prepared, side.valid, side.role, run)
    else:
        assert not isinstance(detector, str)
        kps = extract(prepared, side.valid, detector, side.modality, max_keypoints, run)
    if len(kps) < MIN_KEYPOINTS:
        share = 100.0 * float(side.valid.mean()) if side.valid.size else 0.0
        raise RegistrationError(
            f"Only {len(kps)} keypoint(s) found in the {side.role} ({share:.0f} % valid pixels), at least "
            f"{MIN_KEYPOINTS} needed: the image is featureless or mostly nodata. Choose an image (or band) "
            "with visible structure, check its nodata value, or raise MAX_KEYPOINTS."
        )
    run.say(f"{side.role}: {len(kps)} keypoints", logger=logger)
    return kps


def _fit(a: Keypoints, b: Keypoints, m: Matches, kind: str, threshold: float, size: tuple[float, float],
         refused: list[tuple[int, str]]) -> RansacResult | None:
    if len(m) < KINDS[kind].min_sample:
        return None
    return ransac_matrix(a.xy[m.ia], b.xy[m.ib], kind, threshold, size, refused=refused)


def _too_few(n_inliers: int, n_matches: int, refused: list[tuple[int, str]], kind: str) -> RegistrationError:
    support, problem = max(refused, default=(0, ""))
    if support >= MIN_INLIERS and n_inliers < MIN_INLIERS:
        return RegistrationError(
            f"The {kind} that {support} matches agree on is degenerate ({problem}); nothing was written. "
            "Check that both images show the same area, or try TRANSFORM=similarity."
        )
    return RegistrationError(
        f"Only {n_inliers} inlier match(es) among {n_matches} putative matches, at least {MIN_INLIERS} "
        "needed; nothing was written. Check that the images overlap and show the same area; try more "
        "MAX_KEYPOINTS, TRANSFORM=similarity or affine, or a keypoint MODEL."
    )


@dataclass(frozen=True)
class _Fit:
    """One finished fit: model, inlier correspondences and where its coarse estimate came from."""

    matrix: np.ndarray
    coarse_matrix: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    n_matches: int
    coarse: str  # 'keypoints' or 'dense'


def _keypoint_fit(a: Keypoints, b: Keypoints, kind: str, size: tuple[float, float],
                  stages: dict[str, int], run: Run, putative: Matches | None = None) -> _Fit:
    """Coarse RANSAC on the ``putative`` keypoint matches (default: :func:`.matching.mutual_nearest` with
    the matcher's ratio test), then guided local search (see the module doc). Keypoints without check
    descriptors skip that filter."""
    putative = mutual_nearest(a, b) if putative is None else putative
    filtered = agree(a, b, putative) if a.described.check.shape[1] else putative
    run.say(f"{len(putative)} mutual matches, {len(filtered)} with agreeing check descriptors", logger=logger)
    refused: list[tuple[int, str]] = []
    coarse_kind = "similarity" if kind == "similarity" else "affine"
    coarse = _fit(a, b, filtered, coarse_kind, COARSE_THRESHOLD, size, refused)
    if coarse is None or coarse.n_inliers < MIN_INLIERS:
        coarse = _fit(a, b, putative, coarse_kind, COARSE_THRESHOLD, size, refused)
    stages.update(mutual=len(putative), agreeing=len(filtered),
                  coarse_inliers=0 if coarse is None else coarse.n_inliers)
    if coarse is None or coarse.n_inliers < MIN_INLIERS:
        raise _too_few(0 if coarse is None else coarse.n_inliers, len(putative), refused, coarse_kind)
    h = coarse.matrix
    best: tuple[RansacResult, Matches] | None = None
    for radius in FINE_RADIUS:
        run.check("Keypoint registration")
        local = guided(a, b, project(h, a.xy), radius)
        fine = _fit(a, b, local, kind, FINE_THRESHOLD, size, refused)
        if fine is None or fine.n_inliers < MIN_INLIERS:
            break
        best = (fine, local)
        h = fine.matrix
    if best is None:
        raise _too_few(0, len(putative), refused, kind)
    fine, local = best
    src, dst = a.xy[local.ia[fine.inliers]], b.xy[local.ib[fine.inliers]]
    h = refit_unless_worse(fit_matrix(src, dst, kind), fine, a.xy[local.ia], b.xy[local.ib])
    problem = degeneracy(h, *size)
    if problem is not None:
        raise RegistrationError(f"The fitted {kind} is refused: {problem}; nothing was written. "
                                "Check that both images show the same area, or try TRANSFORM=similarity.")
    return _Fit(h, coarse.matrix, src, dst, len(local), "keypoints")


def _dense_fits(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], kind: str,
                starts: list[tuple[np.ndarray, str]], run: Run, feature_maps: FeatureMaps = features,
                finer_search: bool = False) -> tuple[list[_Fit], list[RegistrationError]]:
    """The dense fine stage (on ``feature_maps``) from each start ``(matrix, source)`` on the prepared INPUT
    ``a`` and REFERENCE ``b`` (``(image, valid)``): the starts' coarse similarity search candidates
    (:func:`.coarse.search`, the :data:`DENSE_STARTS` best) are added here; with ``finer_search``, when none
    is accepted, those of a second search on finer levels (:data:`.coarse.FINER_LEVELS`) as well."""
    fits: list[_Fit] = []
    errors: list[RegistrationError] = []
    searches = ((GRID_SIDE, COARSE_SIDE), FINER_LEVELS) if finer_search else ((GRID_SIDE, COARSE_SIDE),)
    for k, levels in enumerate(searches):
        if fits:
            break
        span = run.span(k / len(searches), (k + 1) / len(searches))
        found = search(a[0], a[1], b[0], b[1], span.span(0.0, 0.6), levels)
        run.say(("coarse similarity search" if k == 0 else "finer coarse search") + ": " + ", ".join(
            f"{c.angle_deg:+.1f} deg x {c.scale:.3f} (score {c.score:.3f})" for c in found[:DENSE_STARTS]),
            logger=logger)
        dense = [(c.matrix, "dense") for c in found[:DENSE_STARTS] if c.score > 0]
        fits, refused = _refine_starts(a, b, kind, (starts if k == 0 else []) + dense, span.span(0.6, 1.0),
                                       feature_maps)
        errors += refused
    return fits, errors


def _refine_starts(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], kind: str,
                   starts: list[tuple[np.ndarray, str]], run: Run,
                   feature_maps: FeatureMaps) -> tuple[list[_Fit], list[RegistrationError]]:
    """The dense fine stage from each start: the accepted fits and the refusals."""
    fits: list[_Fit] = []
    errors: list[RegistrationError] = []
    size = (float(a[0].shape[1]), float(a[0].shape[0]))
    for i, (h0, source) in enumerate(starts):
        span = run.span(i / len(starts), (i + 1) / len(starts))
        if any(corner_error(h0, f.matrix, *size) < SAME_START_PX for f in fits):
            continue  # the fine stage would end where an accepted fit already is
        try:
            fit = refine(a, b, h0, kind, span, feature_maps)
        except RegistrationError as exc:
            errors.append(exc)
            continue
        if _sharp(fit):
            fits.append(_Fit(fit.matrix, h0, fit.src, fit.dst, fit.n_matches, source))
    return fits, errors


def _sharp(fit: DenseFit) -> bool:
    """Whether enough distinct template matches of the dense fit's widest pass agree (see the constants)."""
    return fit.sharp_inliers >= MIN_SHARP_INLIERS and fit.sharp_inliers >= MIN_SHARP_SHARE * fit.sharp


def _choose(fits: list[_Fit], size: tuple[float, float], kind: str) -> _Fit:
    """The fit with the most inliers; refused when a different fit has nearly as many (ambiguous)."""
    ranked = sorted(fits, key=lambda f: -len(f.src))
    best = ranked[0]
    for other in ranked[1:]:
        apart = corner_error(other.matrix, best.matrix, *size)
        if apart > FINE_THRESHOLD and len(other.src) >= AMBIGUOUS_SHARE * len(best.src):
            raise RegistrationError(
                f"Two different {kind} fits are supported by {len(best.src)} and {len(other.src)} matches "
                f"(their corners {apart:.0f} px apart): the registration is ambiguous; nothing was written. "
                "Choose images (or bands) with more distinctive structure, or crop them to the common area.")
    return best


def _dense_result(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], kind: str,
                  starts: list[tuple[np.ndarray, str]], keypoint_error: RegistrationError | None,
                  stages: dict[str, int], run: Run, feature_maps: FeatureMaps = features,
                  finer_search: bool = False) -> _Fit:
    """The best dense fit (:func:`_dense_fits` on ``feature_maps``, :func:`_choose`), or the most telling
    error."""
    fits, errors = _dense_fits(a, b, kind, starts, run, feature_maps, finer_search)
    if not fits:  # the keypoint stage's error says most (keypoint counts, degenerate consensus)
        raise keypoint_error or (errors[0] if errors else _too_few(0, 0, [], kind))
    stages["dense_fits"] = len(fits)
    return _choose(fits, (float(a[0].shape[1]), float(a[0].shape[0])), kind)


def _sar_sift_fit(a: Keypoints, b: Keypoints, kind: str, size: tuple[float, float], stages: dict[str, int],
                  run: Run) -> _Fit:
    """The keypoint fit of SAR-SIFT keypoints, refused when the putative matches left out of it hold
    another consensus with nearly as much support (ambiguous, as in :func:`_choose`)."""
    putative = mutual_nearest(a, b, SAR_SIFT_RATIO)
    fit = _keypoint_fit(a, b, kind, size, stages, run, putative)
    near = np.hypot(*(project(fit.matrix, a.xy[putative.ia]) - b.xy[putative.ib]).T) < COARSE_THRESHOLD
    rest = putative.keep(~near)
    coarse_kind = "similarity" if kind == "similarity" else "affine"
    other = _fit(a, b, rest, coarse_kind, COARSE_THRESHOLD, size, [])
    first = stages.get("coarse_inliers", 0)
    stages["second_consensus"] = 0 if other is None else other.n_inliers
    if other is not None and other.n_inliers >= max(MIN_INLIERS, AMBIGUOUS_SHARE * first):
        raise RegistrationError(
            f"Two different {kind} fits are supported by {first} and {other.n_inliers} keypoint matches: "
            "the registration is ambiguous; nothing was written. Choose images (or bands) with more "
            "distinctive structure, or crop them to the common area.")
    run.progress(1.0)
    return fit


def _sharpened(fit: _Fit, inp: ImageSide, ref: ImageSide, kind: str, stages: dict[str, int],
               run: Run, last_pass: LastPass | None = SHARPEN_LAST_PASS) -> _Fit:
    """The SAR-SIFT fit refined by the dense fine stage (:func:`.dense.refine`, from the pass
    :data:`SHARPEN_FIRST_PASS`, its last pass ``last_pass``, by default :data:`SHARPEN_LAST_PASS`) on the
    linear intensities' speckle-robust channels (:func:`.sarsift.dense_features`): keypoint positions on
    speckle are precise to about 1.5 px each,
    template matches over whole windows to a fraction of that. It fits the
    requested model (no affine choice: the keypoint matches, hundreds over the image, have fixed the
    perspective; calibration: ``benchmarks.investigations.keypoints_sar_precision``). The keypoint fit
    stays when that stage fails, is not sharp (:func:`_sharp`) or moves the corners by more than
    :data:`FINE_THRESHOLD` (the keypoint inliers' own tolerance: a refinement, not another answer)."""
    sides = [sarsift.linear_intensity(side.values, side.kind, side.valid) for side in (inp, ref)]
    stages["sharpened"] = 0
    try:
        dense = refine(sides[0], sides[1], fit.matrix, kind, run, sarsift.dense_features, affine_choice=False,
                       first_pass=SHARPEN_FIRST_PASS, last_pass=last_pass)
    except RegistrationError as exc:
        run.say(f"dense refinement of the SAR-SIFT fit: {str(exc).split(';')[0]}; the keypoint fit stays",
                logger=logger)
        return fit
    moved = corner_error(dense.matrix, fit.matrix, float(inp.values.shape[1]), float(inp.values.shape[0]))
    stages["dense_inliers"] = len(dense.src)
    if not _sharp(dense) or not moved <= FINE_THRESHOLD:
        run.say(f"dense refinement of the SAR-SIFT fit not used ({dense.sharp_inliers} of {dense.sharp} "
                f"distinct template matches agree, corners moved {moved:.1f} px)", logger=logger)
        return fit
    stages["sharpened"] = 1
    return _Fit(dense.matrix, fit.coarse_matrix, dense.src, dense.dst, dense.n_matches, fit.coarse)


def uses_sar_sift(inp: ImageSide, ref: ImageSide, detector: Detector) -> bool:
    """SAR-SIFT keypoints (:mod:`.sarsift`) serve the classical method when both images are SAR."""
    return detector.name == "classical" and inp.modality == "sar" and ref.modality == "sar"


def keypoint_method(inp: ImageSide, ref: ImageSide, detector: Detector,
                    optical_sar_method: str = "sar-harris") -> Detector | str:
    """What finds the keypoints: SAR-SIFT for two SAR images with the classical method, else the
    detector itself (SAR-Harris for the classical one), or RIFT when ``optical_sar_method`` is 'rift'
    (classical method, an optical image on a side)."""
    check_choice(optical_sar_method, OPTICAL_SAR_METHODS, "optical-SAR keypoint method")
    if uses_sar_sift(inp, ref, detector):
        return sarsift.MODEL_ID
    return rift.MODEL_ID if detector.name == "classical" and optical_sar_method == "rift" else detector


def register_images(inp: ImageSide, ref: ImageSide, detector: Detector, kind: str = "homography",
                    max_keypoints: int = MAX_KEYPOINTS, run: Run = QUIET,
                    optical_sar_method: str = "sar-harris", dense_features: str = "cfog",
                    finer_search: bool = False) -> Registration:
    """Register ``inp`` onto ``ref`` (see the module doc); raises :class:`RegistrationError` if it cannot.
    ``optical_sar_method`` (:data:`OPTICAL_SAR_METHODS`) picks the classical method's optical-SAR
    keypoints: 'sar-harris' (default) or 'rift'. ``dense_features`` (:data:`.dense.DENSE_FEATURES`) picks
    the channels of the dense fine stage after keypoints (optical-SAR pairs, or any pair with a keypoint
    MODEL; not the SAR-SIFT path's): 'cfog' (default) or 'combined' (with the learned embedding; decision
    record 2026-12-07-keypoints-deep-dense.md). ``finer_search`` (optical-SAR pairs and pairs with a keypoint
    MODEL; not the SAR-SIFT path): when no start of the dense coarse search is accepted, search again on
    finer levels (:data:`.coarse.FINER_LEVELS`; an option, not the default: more
    answers on high-resolution urban pairs, more wrong ones on 10 m Sentinel-1 pairs; decision record
    2026-12-07-optical-sar-corner-errors.md)."""
    started = time.perf_counter()
    check_kind(kind, MATRIX_KINDS)
    feature_maps = dense_feature_maps(dense_features)
    inp_prepared = prepare_image(inp.values, inp.kind, inp.valid)
    ref_prepared = prepare_image(ref.values, ref.kind, ref.valid)
    method = keypoint_method(inp, ref, detector, optical_sar_method)
    sar_sift = method == sarsift.MODEL_ID
    a = _keypoints(inp, inp_prepared, method, max_keypoints, run.span(0.0, 0.3))
    b = _keypoints(ref, ref_prepared, method, max_keypoints, run.span(0.3, 0.6))
    size = (float(inp.values.shape[1]), float(inp.values.shape[0]))
    stages: dict[str, int] = {}
    if sar_sift:
        try:
            keypoint_fit = _sar_sift_fit(a, b, kind, size, stages, run.span(0.6, 0.7))
        except RegistrationError as exc:  # the dense search may still find it
            run.say(f"SAR-SIFT keypoints: {str(exc).split(';')[0]}; trying the dense search", logger=logger)
            best = _dense_result((inp_prepared, inp.valid), (ref_prepared, ref.valid), kind, [], exc, stages,
                                 run.span(0.6, 1.0))
        else:
            best = _sharpened(keypoint_fit, inp, ref, kind, stages, run.span(0.7, 1.0))
    else:
        starts: list[tuple[np.ndarray, str]] = []
        keypoint_error: RegistrationError | None = None
        try:
            # RIFT's matches are few and noisy: a similarity (2-point samples) starts the dense stage best
            kp = _keypoint_fit(a, b, "similarity" if method == rift.MODEL_ID else kind, size, stages,
                               run.span(0.6, 0.65))
            starts.append((kp.matrix, "keypoints"))
        except RegistrationError as exc:
            keypoint_error = exc
        best = _dense_result((inp_prepared, inp.valid), (ref_prepared, ref.valid), kind, starts,
                             keypoint_error, stages, run.span(0.65, 1.0), feature_maps, finer_search)
    run.say(f"fine fit from the {best.coarse} coarse estimate: {len(best.src)} of {best.n_matches} "
            "matches agree", logger=logger)
    run.progress(1.0)
    return Registration(
        matrix=best.matrix, kind=kind, coarse_matrix=best.coarse_matrix, src=best.src, dst=best.dst,
        residuals=reprojection_errors(best.matrix, best.src, best.dst), n_keypoints=(len(a), len(b)),
        n_matches=best.n_matches, method=detector.name,
        model_id=method if isinstance(method, str) else detector.model_id,
        seconds=time.perf_counter() - started, stages=stages, coarse=best.coarse,
        corner_uncertainty=corner_uncertainty(best.src, best.dst, fitted_kind(kind, best.matrix), *size),
    )
