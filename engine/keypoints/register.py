"""Keypoint registration of two in-memory images: extract, match, filter, coarse fit, fine fit.

1. Keypoints of both prepared images (:mod:`.detect`), each with a primary and a check descriptor.
2. Putative matches: mutual nearest neighbours with a ratio test, then the check
   descriptors must agree (:func:`.matching.agree`).
3. Coarse: RANSAC of a similarity (or affine, for affine and homography requests)
   with a loose threshold.
4. Fine, twice: every INPUT keypoint is matched again among the REFERENCE keypoints
   near its predicted position (local search), and the requested model is fitted by
   RANSAC with a tight threshold, then by least squares on its inliers.

The result maps INPUT pixel-corner coordinates to REFERENCE pixel-corner coordinates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import RegistrationError
from ..run import QUIET, Run
from .detect import Detector, Keypoints, extract
from .geometry import (
    MIN_SAMPLE,
    RansacResult,
    check_kind,
    degeneracy,
    fit_model,
    project,
    ransac,
    reprojection_errors,
)
from .matching import Matches, agree, guided, mutual_nearest
from .prepare import prepare_image

logger = logging.getLogger(__name__)

MAX_KEYPOINTS = 2000
"""Default keypoint budget per image (all pyramid levels together)."""
MIN_KEYPOINTS = 8
MIN_INLIERS = 8
COARSE_THRESHOLD = 8.0
"""RANSAC threshold of the coarse stage (REFERENCE pixels)."""
FINE_RADIUS = (8.0, 4.0)
"""Local search radius of each fine pass (REFERENCE pixels)."""
FINE_THRESHOLD = 3.0


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

    @property
    def n_inliers(self) -> int:
        return len(self.src)

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean(self.residuals**2))) if len(self.residuals) else float("nan")


def _keypoints(side: ImageSide, detector: Detector, max_keypoints: int, run: Run) -> Keypoints:
    prepared = prepare_image(side.values, side.kind, side.valid)
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
    if len(m) < MIN_SAMPLE[kind]:
        return None
    return ransac(a.xy[m.ia], b.xy[m.ib], kind, threshold, size, refused=refused)


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


def register_images(inp: ImageSide, ref: ImageSide, detector: Detector, kind: str = "homography",
                    max_keypoints: int = MAX_KEYPOINTS, run: Run = QUIET) -> Registration:
    """Register ``inp`` onto ``ref`` (see the module doc); raises :class:`RegistrationError` if it cannot."""
    started = time.perf_counter()
    check_kind(kind)
    a = _keypoints(inp, detector, max_keypoints, run.span(0.0, 0.4))
    b = _keypoints(ref, detector, max_keypoints, run.span(0.4, 0.8))
    size = (float(inp.values.shape[1]), float(inp.values.shape[0]))
    putative = mutual_nearest(a, b)
    filtered = agree(a, b, putative)
    run.say(f"{len(putative)} mutual matches, {len(filtered)} with agreeing check descriptors", logger=logger)
    refused: list[tuple[int, str]] = []
    coarse_kind = "similarity" if kind == "similarity" else "affine"
    coarse = _fit(a, b, filtered, coarse_kind, COARSE_THRESHOLD, size, refused)
    if coarse is None or coarse.n_inliers < MIN_INLIERS:
        coarse = _fit(a, b, putative, coarse_kind, COARSE_THRESHOLD, size, refused)
    if coarse is None or coarse.n_inliers < MIN_INLIERS:
        raise _too_few(0 if coarse is None else coarse.n_inliers, len(putative), refused, coarse_kind)
    run.progress(0.85)
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
    h = fit_model(src, dst, kind)
    problem = degeneracy(h, *size)
    if problem is not None:
        raise RegistrationError(f"The fitted {kind} is refused: {problem}; nothing was written. "
                                "Check that both images show the same area, or try TRANSFORM=similarity.")
    run.progress(1.0)
    return Registration(
        matrix=h, kind=kind, coarse_matrix=coarse.matrix, src=src, dst=dst,
        residuals=reprojection_errors(h, src, dst), n_keypoints=(len(a), len(b)), n_matches=len(local),
        method=detector.name, model_id=detector.model_id, seconds=time.perf_counter() - started,
        stages={"mutual": len(putative), "agreeing": len(filtered), "coarse_inliers": coarse.n_inliers},
    )
