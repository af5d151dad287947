"""Dense coarse search of a similarity (rotation, scale, shift) on structural features.

Keypoint descriptors rarely agree between optical and SAR images, so the
coarse stage of keypoint registration also searches the similarity directly:
both prepared images are block-averaged to about :data:`COARSE_SIDE` pixels,
the INPUT is turned and scaled over a grid of candidates, and for each
candidate every shift is scored at once by a masked normalised
cross-correlation of the two images' CFOG/HOPC-style oriented-gradient
channels (:class:`engine.registration.features.OrientedGradientFeatures`;
Ye et al. 2017/2019: dense structural features are what optical and SAR share).
The masked NCC (Padfield 2012) computes numerator and variances from FFT
correlations of the features and of the two validity masks, so the score of
each shift uses only the pixels valid in both images, and shifts that overlap
less than :data:`MIN_OVERLAP` of the smaller image are not considered.

The search is two-level: a grid of rotations and scales on a smaller pooled
level (:data:`GRID_SIDE` pixels), then the best distinct candidates again on
the coarse level with half the steps around each. The result is a similarity
that maps INPUT pixel-corner coordinates to REFERENCE ones (the two levels' sizes are :func:`search`'s
``levels``; the registration's option ``finer_search`` searches again on :data:`FINER_LEVELS`), with a
*distinctness*: how much the best score exceeds the best score of candidates
whose transform lies elsewhere (their image corners more than
:data:`DISTINCT_PX` coarse pixels apart); the caller refuses a peak that does
not stand out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ...run import QUIET, Run
from ..correlation import parabola_peak
from ..features import FeatureExtractor
from .warp import warp_onto

logger = logging.getLogger(__name__)

COARSE_SIDE = 128
"""Longer side (pixels) of the level on which the best candidates are scored."""
GRID_SIDE = 64
"""Longer side (pixels) of the level on which the whole grid of candidates is scored."""
ROTATION_RANGE = 36.0
"""Rotations searched: -ROTATION_RANGE..+ROTATION_RANGE degrees ..."""
ROTATION_STEP = 4.0
"""... in steps of this many degrees on the grid level (half on the coarse level)."""
SCALE_RANGE = (0.7, 1.45)
"""Scales (REFERENCE pixels per INPUT pixel) searched, log-spaced ..."""
SCALE_STEP = 1.08
"""... by this ratio on the grid level (its square root on the coarse level)."""
MIN_OVERLAP = 0.35
"""Smallest overlap of the two validity masks, as a share of the smaller one, for a shift to count."""
KEEP = 4
"""Distinct grid candidates refined on the coarse level."""
DISTINCT_PX = 6.0
"""Candidates whose mapped corners differ by more than this (coarse pixels) are 'elsewhere'."""
ERODE = 3
"""Feature support (pixels): the validity masks are eroded by this much after warping."""
FINER_LEVELS = (128, 256)
"""``(grid side, coarse side)`` of the second, finer search the registration runs with ``finer_search``
when no start of the first is accepted (:func:`search`'s ``levels``): the structure of dense urban scenes
at 1-3 m survives pooling to 64 / 128 px too poorly for the search to find it (decision record
2026-12-07-optical-sar-corner-errors.md)."""


@dataclass(frozen=True)
class CoarseResult:
    """The best similarity found and how much it stands out."""

    matrix: np.ndarray  # INPUT pixel-corner coordinates -> REFERENCE pixel-corner coordinates (3 x 3)
    score: float  # masked NCC of the feature channels at the best candidate
    runner_up: float  # best score of a candidate whose transform lies elsewhere
    angle_deg: float
    scale: float

    @property
    def distinctness(self) -> float:
        """``score / runner_up`` (inf when no other candidate scored above 0)."""
        return self.score / self.runner_up if self.runner_up > 1e-6 else float("inf")


@dataclass
class _Side:
    """One image on a pooled level: values, validity, pooling factor."""

    img: np.ndarray
    valid: np.ndarray
    factor: int


def pool(img: np.ndarray, valid: np.ndarray, factor: int) -> _Side:
    """Valid-weighted ``factor x factor`` block means; a block is valid when all its pixels are."""
    if factor <= 1:
        return _Side(np.where(valid, img, 0.0).astype(np.float32), valid.copy(), 1)
    h, w = (s // factor for s in img.shape)
    v = valid[: h * factor, : w * factor].reshape(h, factor, w, factor)
    x = np.where(valid, img, 0.0)[: h * factor, : w * factor].reshape(h, factor, w, factor)
    n = v.sum(axis=(1, 3))
    mean = x.sum(axis=(1, 3)) / np.maximum(n, 1)
    return _Side(mean.astype(np.float32), n == factor * factor, factor)


def masked_features(extractor: FeatureExtractor, img: np.ndarray,
                    valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``extractor``'s channels of a prepared image, zero outside the validity mask eroded by :data:`ERODE`,
    and that mask."""
    ok = eroded(valid)
    feats = extractor(img, valid)
    feats[:, ~ok] = 0.0
    return feats, ok


def features(img: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CFOG channels of a prepared image, zero outside the validity mask eroded by :data:`ERODE`."""
    from ..features import OrientedGradientFeatures

    return masked_features(OrientedGradientFeatures(log_scale=False), img, valid)


def eroded(valid: np.ndarray) -> np.ndarray:
    """The validity mask eroded by :data:`ERODE` pixels (where feature channels are trusted)."""
    from scipy import ndimage

    return ndimage.binary_erosion(valid, iterations=ERODE) if valid.any() else valid


def similarity(angle_deg: float, scale: float) -> np.ndarray:
    """2 x 2 rotation-and-scale matrix (image axes: x right, y down; positive angles turn clockwise)."""
    t = np.deg2rad(angle_deg)
    return scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _warp(side: _Side, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The side turned and scaled by ``a`` about its centre onto a canvas holding all of it.

    Returns the canvas image, its validity and the 3 x 3 map from the side's pixel corners to the canvas's.
    """
    h, w = side.img.shape
    c_in = np.array([w / 2.0, h / 2.0])
    corners = (np.array([[0, 0], [w, 0], [w, h], [0, h]], float) - c_in) @ a.T
    size = np.ceil(corners.max(axis=0) - corners.min(axis=0)).astype(int) + 1
    c_out = size / 2.0
    m = np.eye(3)
    m[:2, :2] = a
    m[:2, 2] = c_out - a @ c_in
    img, ok = warp_onto(side.img, side.valid, m, (int(size[1]), int(size[0])))
    return img, ok, m


class _Reference:
    """FFTs of the REFERENCE's features and mask on one padded size, reused by every candidate."""

    def __init__(self, feats: np.ndarray, ok: np.ndarray, shape: tuple[int, int]) -> None:
        from scipy import fft

        self.shape = shape
        self.size = ok.shape
        self.count = float(ok.sum())
        self.channels = len(feats)
        rf = fft.rfft2(feats, s=shape, workers=1)
        self.g = rf
        self.gs = rf.sum(axis=0)
        self.g2 = fft.rfft2((feats**2).sum(axis=0), s=shape, workers=1)
        self.m = fft.rfft2(ok.astype(np.float32), s=shape, workers=1)


def masked_ncc(feats: np.ndarray, ok: np.ndarray, ref: _Reference) -> tuple[np.ndarray, np.ndarray]:
    """Masked NCC of ``feats`` (INPUT canvas) against the reference for every shift, and the overlaps.

    Element ``[uy mod ny, ux mod nx]`` scores canvas pixel ``(x, y)`` on reference pixel ``(x + ux, y + uy)``;
    the mean is taken over all channels together.
    """
    from scipy import fft

    s = ref.shape
    f = fft.rfft2(feats, s=s, workers=1)
    fs = np.conj(f.sum(axis=0))
    f2 = np.conj(fft.rfft2((feats**2).sum(axis=0), s=s, workers=1))
    mf = np.conj(fft.rfft2(ok.astype(np.float32), s=s, workers=1))

    def corr(spectrum: np.ndarray) -> np.ndarray:
        return fft.irfft2(spectrum, s=s, workers=1)

    overlap = np.rint(corr(mf * ref.m))
    n = np.maximum(overlap, 1.0) * ref.channels
    sf, sg = corr(fs * ref.m), corr(mf * ref.gs)
    num = corr(np.einsum("chw,chw->hw", np.conj(f), ref.g)) - sf * sg / n
    var_f = np.maximum(corr(f2 * ref.m) - sf**2 / n, 0.0)
    var_g = np.maximum(corr(mf * ref.g2) - sg**2 / n, 0.0)
    den = np.sqrt(var_f * var_g)
    ncc = np.where(den > 1e-9 * n, num / np.maximum(den, 1e-30), 0.0)
    return ncc, overlap


@dataclass(frozen=True)
class _Candidate:
    angle: float
    scale: float
    score: float
    matrix: np.ndarray  # full-resolution INPUT -> REFERENCE


def _score(inp: _Side, ref: _Reference, angle: float, scale: float) -> _Candidate:
    """The best shift of one rotation and scale, as a full-resolution similarity."""
    img, ok, m = _warp(inp, similarity(angle, scale))
    feats, ok = features(img, ok)
    ncc, overlap = masked_ncc(feats, ok, ref)
    enough = overlap >= MIN_OVERLAP * max(1.0, min(float(ok.sum()), ref.count))
    if not enough.any():
        return _Candidate(angle, scale, -1.0, np.eye(3))
    scored = np.where(enough, ncc * np.sqrt(overlap / max(1.0, ref.count)), -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(scored)), scored.shape)
    ny, nx = ncc.shape
    fy = parabola_peak(ncc[(iy - 1) % ny, ix], ncc[iy, ix], ncc[(iy + 1) % ny, ix])
    fx = parabola_peak(ncc[iy, (ix - 1) % nx], ncc[iy, ix], ncc[iy, (ix + 1) % nx])
    uy = (iy if iy < ref.size[0] else iy - ny) + fy
    ux = (ix if ix < ref.size[1] else ix - nx) + fx
    shift = np.array([[1.0, 0, ux], [0, 1.0, uy], [0, 0, 1.0]])
    f = np.diag([float(inp.factor), float(inp.factor), 1.0])
    return _Candidate(angle, scale, float(scored[iy, ix]), f @ shift @ m @ np.linalg.inv(f))


def _level(inp: np.ndarray, inp_valid: np.ndarray, ref: np.ndarray, ref_valid: np.ndarray, side: int,
           candidates: list[tuple[float, float]]) -> tuple[_Side, _Reference]:
    """Both images pooled to about ``side`` pixels, the REFERENCE's spectra on a size that fits every
    candidate's canvas."""
    from scipy import fft

    factor = max(1, int(np.ceil(max(*inp.shape, *ref.shape) / side)))
    a, b = pool(inp, inp_valid, factor), pool(ref, ref_valid, factor)
    h, w = a.img.shape
    t = np.deg2rad(np.array([c[0] for c in candidates]))
    s = np.array([c[1] for c in candidates])
    canvas_w = np.max(s * (w * np.abs(np.cos(t)) + h * np.abs(np.sin(t)))) + 3
    canvas_h = np.max(s * (w * np.abs(np.sin(t)) + h * np.abs(np.cos(t)))) + 3
    shape = (fft.next_fast_len(int(canvas_h) + b.img.shape[0], real=True),
             fft.next_fast_len(int(canvas_w) + b.img.shape[1], real=True))
    feats, ok = features(b.img, b.valid)
    return a, _Reference(feats, ok, shape)


def _far(c: _Candidate, others: list[_Candidate], size: tuple[float, float], px: float) -> list[_Candidate]:
    from ..transforms import corner_error

    return [o for o in others if corner_error(o.matrix, c.matrix, *size) > px]


def _distinct(ranked: list[_Candidate], size: tuple[float, float], px: float, keep: int) -> list[_Candidate]:
    """The best ``keep`` candidates, greedily, each more than ``px`` from those already chosen."""
    from ..transforms import corner_error

    chosen: list[_Candidate] = []
    for c in ranked:
        if all(corner_error(c.matrix, o.matrix, *size) > px for o in chosen):
            chosen.append(c)
            if len(chosen) == keep:
                break
    return chosen


def _score_all(inp: _Side, ref: _Reference, candidates: list[tuple[float, float]], every: int,
               run: Run) -> list[_Candidate]:
    """Every candidate ``(angle, scale)`` scored, checking for cancel every ``every`` candidates."""
    scored = []
    for i, (angle, scale) in enumerate(candidates):
        if i % every == 0:
            run.check("Keypoint registration")
            run.progress(i / len(candidates))
        scored.append(_score(inp, ref, angle, scale))
    return scored


def grid() -> list[tuple[float, float]]:
    """(angle in degrees, scale) of every candidate of the grid level."""
    angles = np.arange(-ROTATION_RANGE, ROTATION_RANGE + 1e-9, ROTATION_STEP)
    lo, hi = np.log(SCALE_RANGE[0]), np.log(SCALE_RANGE[1])
    n = int(np.ceil((hi - lo) / np.log(SCALE_STEP))) + 1
    scales = np.exp(np.linspace(lo, hi, n))
    return [(float(a), float(s)) for a in angles for s in scales]


def search(inp: np.ndarray, inp_valid: np.ndarray, ref: np.ndarray, ref_valid: np.ndarray,
           run: Run = QUIET, levels: tuple[int, int] = (GRID_SIDE, COARSE_SIDE)) -> list[CoarseResult]:
    """Distinct similarities of prepared INPUT onto prepared REFERENCE, best first (see the module doc);
    ``levels``: the longer sides of the grid and coarse levels (:data:`GRID_SIDE`, :data:`COARSE_SIDE`)."""
    size = (float(inp.shape[1]), float(inp.shape[0]))
    candidates = grid()
    a, r = _level(inp, inp_valid, ref, ref_valid, levels[0], candidates)
    ranked = sorted(_score_all(a, r, candidates, 16, run.span(0.0, 0.6)), key=lambda c: -c.score)
    kept = _distinct(ranked, size, DISTINCT_PX * a.factor, KEEP)
    half_a, half_s = ROTATION_STEP / 2, np.sqrt(SCALE_STEP)
    local = [(c.angle + da, c.scale * ds) for c in kept for da in (-half_a, 0.0, half_a)
             for ds in (1 / half_s, 1.0, half_s)]
    a, r = _level(inp, inp_valid, ref, ref_valid, levels[1], local)
    fine = sorted(_score_all(a, r, local, 8, run.span(0.6, 1.0)), key=lambda c: -c.score)
    results = []
    for best in _distinct(fine, size, DISTINCT_PX * a.factor, KEEP):
        others = _far(best, fine, size, DISTINCT_PX * a.factor)
        runner_up = max((o.score for o in others), default=0.0)
        results.append(CoarseResult(best.matrix, best.score, runner_up, best.angle, best.scale))
    logger.debug("coarse search: %d grid + %d local candidates, best %.3f at %.1f deg x %.3f, runner-up %.3f",
                 len(candidates), len(local), results[0].score, results[0].angle_deg, results[0].scale,
                 results[0].runner_up)
    return results
