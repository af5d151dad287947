"""The quality figures of :mod:`.metrics`, streamed over strips of rows: memory flat in the scene size.

Two passes over both rasters, each a strip of about :data:`STRIP_PIXELS` pixels at a time:

1. totals: valid pixels in common, the reference's sum, minimum and maximum there (the PSNR peak and
   the fill value of invalid pixels), the squared error (PSNR), and the ranges the report's
   histograms need;
2. windows: every strip is read with :data:`HALO` rows of its neighbours above and below, so the
   7 x 7 SSIM windows and the 3 x 3 Sobel / erosion of EPI see exactly the pixels they see on the
   whole image (at the image's own edges the filters reflect as they do there); per strip, the SSIM
   map's sum, the co-moments of the gradient magnitudes (merged exactly across strips), the ENL
   blocks' coefficient of variation and ENLs (strips start on block rows), the report's thumbnails,
   histograms (grey stretch and difference scale, 4096 bins) and the row sums of the worst-window
   search.

The figures equal :func:`.metrics.compare` on the whole images up to floating-point summation
order (tests/engine/test_quality_strips.py); the report's stretches come from the histograms (to
1/4096 of the range) instead of exact percentiles, and the crop is read again at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...errors import InputError
from ...preprocess import db_to_linear
from ...run import QUIET, Run
from .report import CROP_SIDE, DIFFERENCE_PERCENTILE, STRETCH_PERCENTILES, THUMB_SIDE, Pictures

STRIP_PIXELS = 262_144
"""Pixels per strip (about 2 MB per float64 array; SSIM holds about a dozen of them): cancel is checked
between strips, and the window pass of a strip takes about 0.3 s on one idle core (2,000,000 took 24-34 s
on the shared 2 cores, docs/decisions/2026-12-07-progress-cancel-and-large-coregistration.md)."""
HALO = 3
"""Rows read beyond each side of a strip: the SSIM window's half side (7 x 7), more than Sobel needs."""
HISTOGRAM_BINS = 4096

RowReader = Callable[[int, int], np.ndarray]
"""``read(top, bottom)`` -> rows ``top..bottom-1`` of one image in dB (float32, invalid NaN)."""


@dataclass(frozen=True)
class StreamedFigures:
    """What :func:`stream_figures` measured: the metrics, and the report's pictures when asked for."""

    psnr: float
    ssim: float
    enl_ratio: float
    epi: float
    peak_db: float
    valid_pixels: int
    homogeneous_blocks: int
    pictures: Pictures | None


def strip_bounds(height: int, width: int, block: int, min_rows: int) -> list[tuple[int, int]]:
    """Strips of rows ``[(top, bottom), ...]`` of about :data:`STRIP_PIXELS` pixels, starting on multiples of
    ``block``; a last strip shorter than ``min_rows`` is merged into the one before."""
    rows = max(block, STRIP_PIXELS // max(width, 1) // block * block)
    tops = list(range(0, height, rows))
    bounds = [(t, min(t + rows, height)) for t in tops]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_rows:
        bounds[-2:] = [(bounds[-2][0], height)]
    return bounds


# ------------------------------------------------------------------ pass 1
@dataclass
class _Totals:
    count: int = 0
    ref_sum: float = 0.0
    ref_min: float = math.inf
    ref_max: float = -math.inf
    squared_error: float = 0.0
    finite_min: float = math.inf  # the reference's finite values (grey stretch histogram)
    finite_max: float = -math.inf
    diff_max: float = 0.0  # |reconstruction - reference| (difference histogram)

    def add(self, ref: np.ndarray, rec: np.ndarray) -> None:
        mask = np.isfinite(ref) & np.isfinite(rec)
        finite = ref[np.isfinite(ref)]
        if finite.size:
            self.finite_min = min(self.finite_min, float(finite.min()))
            self.finite_max = max(self.finite_max, float(finite.max()))
        if not mask.any():
            return
        values = ref[mask].astype(np.float64)
        diff = values - rec[mask].astype(np.float64)
        self.count += int(values.size)
        self.ref_sum += float(values.sum())
        self.ref_min = min(self.ref_min, float(values.min()))
        self.ref_max = max(self.ref_max, float(values.max()))
        self.squared_error += float(np.sum(diff**2))
        self.diff_max = max(self.diff_max, float(np.abs(diff).max()))

    @property
    def peak(self) -> float:
        span = self.ref_max - self.ref_min
        return span if span > 0 else 1.0

    @property
    def fill(self) -> float:
        return self.ref_sum / self.count


# ------------------------------------------------------------------ pass 2 accumulators
@dataclass
class _Correlation:
    """Pearson correlation of two streams, merged exactly across batches (Chan et al.)."""

    n: int = 0
    mean_a: float = 0.0
    mean_b: float = 0.0
    m2a: float = 0.0
    m2b: float = 0.0
    cab: float = 0.0
    close: bool = True

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if a.size == 0:
            return
        self.close = self.close and bool(np.allclose(a, b))
        n_b, ma, mb = a.size, float(a.mean()), float(b.mean())
        da, db = a - ma, b - mb
        m2a, m2b, cab = float(np.dot(da, da)), float(np.dot(db, db)), float(np.dot(da, db))
        n = self.n + n_b
        delta_a, delta_b = ma - self.mean_a, mb - self.mean_b
        weight = self.n * n_b / n
        self.m2a += m2a + delta_a**2 * weight
        self.m2b += m2b + delta_b**2 * weight
        self.cab += cab + delta_a * delta_b * weight
        self.mean_a += delta_a * n_b / n
        self.mean_b += delta_b * n_b / n
        self.n = n

    def value(self) -> float:
        if self.n < 2:
            return math.nan
        if self.m2a == 0 or self.m2b == 0:
            return 1.0 if self.close else 0.0
        return self.cab / math.sqrt(self.m2a * self.m2b)


@dataclass
class _EnlBlocks:
    """Per fully valid block of the reference: coefficient of variation and both ENLs (row-major order)."""

    block: int
    cv: list[np.ndarray] = field(default_factory=list)
    ref_enl: list[np.ndarray] = field(default_factory=list)
    rec_enl: list[np.ndarray] = field(default_factory=list)

    def add(self, ref: np.ndarray, rec: np.ndarray, mask: np.ndarray) -> None:
        b = self.block
        h, w = (ref.shape[0] // b) * b, (ref.shape[1] // b) * b
        if h == 0 or w == 0:
            return

        def blocks(a: np.ndarray) -> np.ndarray:
            return a[:h, :w].reshape(h // b, b, w // b, b).transpose(0, 2, 1, 3).reshape(-1, b * b)

        ref_i = blocks(db_to_linear(np.where(mask, ref, np.nan), "intensity")).astype(np.float64)
        rec_i = blocks(db_to_linear(np.where(mask, rec, np.nan), "intensity")).astype(np.float64)
        full = blocks(mask).all(axis=1)
        mean = ref_i.mean(axis=1)
        keep = full & (mean > 0)
        ref_i, rec_i, mean = ref_i[keep], rec_i[keep], mean[keep]
        self.cv.append(ref_i.std(axis=1) / mean)
        self.ref_enl.append(_enl(ref_i))
        self.rec_enl.append(_enl(rec_i))

    def ratio(self, fraction: float) -> tuple[float, int]:
        cv = np.concatenate(self.cv) if self.cv else np.zeros(0)
        if cv.size == 0:
            return math.nan, 0
        keep = np.argsort(cv, kind="stable")[: max(1, round(fraction * cv.size))]
        ref, rec = np.concatenate(self.ref_enl)[keep], np.concatenate(self.rec_enl)[keep]
        finite = np.isfinite(ref) & np.isfinite(rec)
        if not finite.any():
            return math.nan, int(keep.size)
        return float(np.mean(rec[finite]) / np.mean(ref[finite])), int(keep.size)


def _enl(values: np.ndarray) -> np.ndarray:
    """ENL ``mean^2 / variance`` per row (inf where the variance is 0)."""
    var = values.var(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(var == 0, math.inf, values.mean(axis=1) ** 2 / var)


@dataclass
class _WorstWindow:
    """The squared-difference and valid-count integrals at the rows and columns the window search needs
    (:func:`engine.codec.quality.report.worst_window`), accumulated strip by strip."""

    height: int
    width: int
    side: int = 0
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    cols: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    col_points: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    integrals: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        h, w = self.height, self.width
        self.side = side = max(1, min(CROP_SIDE, h, w))
        step = max(1, side // 4)
        self.rows = np.unique(np.r_[np.arange(0, h - side + 1, step), h - side])
        self.cols = np.unique(np.r_[np.arange(0, w - side + 1, step), w - side])
        self.col_points = np.unique(np.r_[self.cols, self.cols + side])
        self._acc = (np.zeros(w), np.zeros(w))
        self._wanted = sorted(set(self.rows.tolist()) | set((self.rows + side).tolist()))
        self.integrals[0] = (np.zeros(self.col_points.size), np.zeros(self.col_points.size))

    def add(self, top: int, sq: np.ndarray, valid: np.ndarray) -> None:
        bottom = top + sq.shape[0]
        cum_sq, cum_n = np.cumsum(sq, axis=0), np.cumsum(valid, axis=0, dtype=np.float64)
        for b in (r for r in self._wanted if top < r <= bottom):
            row_sq, row_n = self._acc[0] + cum_sq[b - top - 1], self._acc[1] + cum_n[b - top - 1]
            self.integrals[b] = tuple(np.r_[0.0, np.cumsum(a)][self.col_points] for a in (row_sq, row_n))
        self._acc = (self._acc[0] + cum_sq[-1], self._acc[1] + cum_n[-1])

    def best(self) -> tuple[int, int, int]:
        s = self.side
        ci = {int(c): i for i, c in enumerate(self.col_points)}
        left = np.array([ci[int(c)] for c in self.cols])
        right = np.array([ci[int(c + s)] for c in self.cols])

        def sums(k: int) -> np.ndarray:
            top = np.stack([self.integrals[int(r)][k] for r in self.rows])
            bottom = np.stack([self.integrals[int(r + s)][k] for r in self.rows])
            return bottom[:, right] - bottom[:, left] - top[:, right] + top[:, left]

        counts = sums(1)
        means = np.where(counts >= 0.5 * s * s, sums(0) / np.maximum(counts, 1), -1.0)
        best = np.unravel_index(int(np.argmax(means)), means.shape)
        return int(self.rows[best[0]]), int(self.cols[best[1]]), s


@dataclass
class _ReportSample:
    """Thumbnails (every ``step``-th pixel), histograms and the worst-window search of the report."""

    height: int
    width: int
    totals: _Totals
    step: int = 1
    thumbs: tuple[list[np.ndarray], list[np.ndarray]] = field(default_factory=lambda: ([], []))
    ref_hist: np.ndarray = field(default_factory=lambda: np.zeros(HISTOGRAM_BINS, np.int64))
    diff_hist: np.ndarray = field(default_factory=lambda: np.zeros(HISTOGRAM_BINS, np.int64))
    window: _WorstWindow | None = None

    def __post_init__(self) -> None:
        self.step = max(1, math.ceil(max(self.height, self.width) / THUMB_SIDE))
        self.window = _WorstWindow(self.height, self.width)
        t = self.totals
        top = max(t.finite_max, t.finite_min + 1e-6)
        self._ref_edges = np.linspace(t.finite_min, top, HISTOGRAM_BINS + 1)
        self._diff_edges = np.linspace(0.0, max(t.diff_max, 1e-6), HISTOGRAM_BINS + 1)

    def add(self, top: int, ref: np.ndarray, rec: np.ndarray) -> None:
        first = (-top) % self.step
        self.thumbs[0].append(ref[first::self.step, ::self.step].copy())  # a view would keep the strip
        self.thumbs[1].append(rec[first::self.step, ::self.step].copy())
        finite = ref[np.isfinite(ref)]
        self.ref_hist += np.histogram(finite, bins=self._ref_edges)[0]
        diff = rec.astype(np.float64) - ref
        valid = np.isfinite(diff)
        self.diff_hist += np.histogram(np.abs(diff[valid]), bins=self._diff_edges)[0]
        assert self.window is not None
        self.window.add(top, np.where(valid, diff, 0.0) ** 2, valid)

    def pictures(self, read_ref: RowReader, read_rec: RowReader) -> Pictures:
        lo, hi = (_percentile(self.ref_hist, self._ref_edges, q) for q in STRETCH_PERCENTILES)
        limit = _percentile(self.diff_hist, self._diff_edges, DIFFERENCE_PERCENTILE)
        assert self.window is not None
        row, col, side = self.window.best()
        cols = slice(col, col + side)
        crops = (read_ref(row, row + side)[:, cols], read_rec(row, row + side)[:, cols])
        return Pictures(np.concatenate(self.thumbs[0]), np.concatenate(self.thumbs[1]), self.step,
                        (row, col, side), crops[0], crops[1], lo, hi, max(limit, 1e-3))


def _percentile(counts: np.ndarray, edges: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of histogrammed values (linear within the bin); 0/1 when empty."""
    total = int(counts.sum())
    if total == 0:
        return 0.0 if q < 50 else 1.0
    cdf = np.cumsum(counts) / total
    i = int(np.searchsorted(cdf, q / 100.0))
    i = min(i, counts.size - 1)
    below = cdf[i - 1] if i > 0 else 0.0
    inside = (q / 100.0 - below) / max(cdf[i] - below, 1e-12)
    return float(edges[i] + np.clip(inside, 0, 1) * (edges[i + 1] - edges[i]))


# ------------------------------------------------------------------ the two passes
def stream_figures(read_ref: RowReader, read_rec: RowReader, shape: tuple[int, int], *,
                   peak: float | None = None, block: int = 16, fraction: float = 0.1, ssim_window: int = 7,
                   pictures: bool = False, run: Run = QUIET) -> StreamedFigures:
    """PSNR, SSIM, ENL ratio and EPI of two dB images read by rows (see the module doc)."""
    height, width = shape
    win = min(ssim_window, height, width)
    win -= 1 - win % 2  # odd
    block = max(2, min(block, height, width))
    bounds = strip_bounds(height, width, block, max(win, block))
    totals = _Totals()
    for i, (top, bottom) in enumerate(bounds):
        run.check("Quality assessment")
        totals.add(read_ref(top, bottom), read_rec(top, bottom))
        run.progress(0.4 * (i + 1) / len(bounds))
    if totals.count == 0:
        raise InputError("Reference and reconstruction have no valid pixel in common; nothing to compare.")
    peak = totals.peak if peak is None else peak
    windows = _Windows(totals.fill, peak, win, _EnlBlocks(block))
    sample = _ReportSample(height, width, totals) if pictures else None
    for i, (top, bottom) in enumerate(bounds):
        run.check("Quality assessment")
        lo, hi = max(0, top - HALO), min(height, bottom + HALO)
        ref, rec = read_ref(lo, hi), read_rec(lo, hi)
        windows.add(ref, rec, top - lo, bottom - lo)
        if sample is not None:
            sample.add(top, ref[top - lo:bottom - lo], rec[top - lo:bottom - lo])
        run.progress(0.4 + 0.55 * (i + 1) / len(bounds))
    ratio, blocks = windows.enl.ratio(fraction)
    return StreamedFigures(
        psnr=math.inf if totals.squared_error == 0 else 10.0 * math.log10(peak**2 * totals.count
                                                                          / totals.squared_error),
        ssim=windows.ssim_value(), enl_ratio=ratio, epi=windows.epi.value(), peak_db=peak,
        valid_pixels=totals.count, homogeneous_blocks=blocks,
        pictures=sample.pictures(read_ref, read_rec) if sample is not None else None,
    )


@dataclass
class _Windows:
    """SSIM sums, EPI co-moments and ENL blocks of the strips (each read with its halo)."""

    fill: float
    peak: float
    win: int
    enl: _EnlBlocks
    ssim_sum: float = 0.0
    ssim_count: int = 0
    epi: _Correlation = field(default_factory=_Correlation)

    def add(self, ref: np.ndarray, rec: np.ndarray, core_top: int, core_bottom: int) -> None:
        from scipy import ndimage

        mask = np.isfinite(ref) & np.isfinite(rec)
        core = slice(core_top, core_bottom)
        ref_f = np.where(mask, ref, self.fill).astype(np.float64)
        rec_f = np.where(mask, rec, self.fill).astype(np.float64)
        if self.win >= 3:
            from skimage.metrics import structural_similarity

            _, full = structural_similarity(ref_f, rec_f, win_size=self.win, data_range=self.peak, full=True)
            self.ssim_sum += float(full[core][mask[core]].sum())
            self.ssim_count += int(mask[core].sum())
        inner = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=0)[core]

        def magnitude(img: np.ndarray) -> np.ndarray:
            return np.hypot(ndimage.sobel(img, axis=0), ndimage.sobel(img, axis=1))[core]

        self.epi.add(magnitude(ref_f)[inner], magnitude(rec_f)[inner])
        self.enl.add(ref[core], rec[core], mask[core])

    def ssim_value(self) -> float:
        return self.ssim_sum / self.ssim_count if self.ssim_count else math.nan
