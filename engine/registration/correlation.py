"""Exhaustive shift search between two dense feature maps (all shifts at once by FFT).

Convention: ``template`` (from the INPUT) has shape ``(c, h, w)``; ``search``
(from the REFERENCE) has shape ``(c, h + 2m, w + 2m)`` and is centred on the
same place, ``m`` being the largest shift searched. The result ``(dx, dy)``
says that the content at template pixel ``(x, y)`` lies at
``(x + dx, y + dy)`` in the reference, i.e. the INPUT content must move by
``(+dx, +dy)`` (right/down when positive) to match.

Score: normalised cross-correlation of the whole feature volume (summed over
channels), numerator by FFT, denominator from integral images. Coarse to fine:
when ``m`` is large the volume is average-pooled and searched over the whole
range first, then refined at full resolution in a small neighbourhood.
Sub-pixel: the numerator is evaluated on a fine grid around the integer peak by
a matrix DFT (band-limited interpolation, no large zero-padded FFT), and a
parabola through the best fine sample gives the last digits.
Reliability: peak NCC divided by the highest NCC outside the peak's main lobe.
Distinctness: how far the peak stands above the highest other local maximum, in robust standard
deviations (1.4826 x median absolute deviation) of the whole NCC surface; unlike
the ratio it does not depend on the NCC level, so one threshold serves weak
SAR–optical and strong SAR–SAR peaks alike. With coarse to fine both come from
the coarse level, the only one that sees the whole search range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_DISTINCTNESS = 2.0
"""Distinctness (robust standard deviations of the correlation surface above the next local maximum) a
peak needs where no calibration says otherwise (the hand-set value of issue 15): the keypoint fine
stage's template matches, and a shift method without a calibration entry (:mod:`.shift.calibration`)."""
COARSE_MAX_SHIFT = 16
"""Above this many pixels of search radius, the search starts on a pooled (coarser) volume."""

MIN_COARSE_SIZE = 64
"""Smallest side (pixels) of the pooled template at the coarsest level."""

LOBE_RADIUS = 4
"""Radius (pixels of the level searched) of the main lobe ignored when looking for the second peak
(halved, at least 2, for the reliability ratio at a coarse level; always 4 for the distinctness)."""

UPSAMPLE = 20
"""Sub-pixel grid: 1/UPSAMPLE pixel around the integer peak."""


@dataclass(frozen=True)
class Match:
    """Result of one search: shift of the INPUT content (pixels) and how much to trust it."""

    dx: float
    dy: float
    score: float  # peak normalised cross-correlation, -1..1
    reliability: float  # peak / second peak outside the main lobe (>= 1 means unique)
    at_limit: bool  # the peak's main lobe touches the border of the search range (true shift may be larger)
    distinctness: float = float("inf")  # (peak - second peak) / robust std of the NCC surface


def box_sums(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sums over every ``h x w`` window of the last two axes (valid positions), via integral images."""
    c = np.cumsum(np.cumsum(a, axis=-2, dtype=np.float64), axis=-1)
    c = np.pad(c, [(0, 0)] * (a.ndim - 2) + [(1, 0), (1, 0)])
    return c[..., h:, w:] - c[..., :-h, w:] - c[..., h:, :-w] + c[..., :-h, :-w]


def _ncc_surface(
    template: np.ndarray, search: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """NCC for every integer shift; also the cross-power spectrum and denominator for refinement."""
    from scipy import fft

    _, h, w = template.shape
    _, sh, sw = search.shape
    ny, nx = fft.next_fast_len(sh, real=True), fft.next_fast_len(sw, real=True)
    t = template - template.mean(axis=(1, 2), keepdims=True)
    t_norm = float(np.sqrt((t.astype(np.float64) ** 2).sum()))
    fs = fft.rfft2(search, s=(ny, nx), workers=1)
    ft = fft.rfft2(t, s=(ny, nx), workers=1)
    cross = (fs * np.conj(ft)).sum(axis=0)
    num = fft.irfft2(cross, s=(ny, nx), workers=1)[: sh - h + 1, : sw - w + 1]
    n = h * w
    s1 = box_sums(search, h, w)
    s2 = box_sums((search.astype(np.float64) ** 2).sum(axis=0), h, w)  # channels summed first
    var = np.maximum(s2 - (s1**2).sum(axis=0) / n, 0.0)
    den = np.sqrt(var) * t_norm
    ncc = np.where(den > 1e-12, num / np.maximum(den, 1e-12), 0.0)
    return ncc, cross, den, (ny, nx)


def _second_peak(ncc: np.ndarray, iy: int, ix: int, radius: int) -> float:
    yy, xx = np.ogrid[: ncc.shape[0], : ncc.shape[1]]
    outside = (yy - iy) ** 2 + (xx - ix) ** 2 > radius**2
    return float(ncc[outside].max()) if outside.any() else -1.0


def _second_local_peak(ncc: np.ndarray, iy: int, ix: int, radius: int) -> float:
    """Highest local maximum (3 x 3) outside ``radius`` of the peak; -inf when there is none."""
    from scipy import ndimage

    yy, xx = np.ogrid[: ncc.shape[0], : ncc.shape[1]]
    outside = (yy - iy) ** 2 + (xx - ix) ** 2 > radius**2
    local = (ncc >= ndimage.maximum_filter(ncc, size=3, mode="nearest")) & outside
    return float(ncc[local].max()) if local.any() else float("-inf")


def _distinctness(ncc: np.ndarray, peak: float, second: float) -> float:
    """(peak - second) in robust standard deviations of the surface (inf when the surface is flat)."""
    if not np.isfinite(second):
        return float("inf")
    med = float(np.median(ncc))
    sigma = 1.4826 * float(np.median(np.abs(ncc - med)))
    return (peak - second) / sigma if sigma > 1e-12 else float("inf")


def parabola_peak(vm: float, v0: float, vp: float) -> float:
    """Sub-sample offset (-0.5..0.5) of the peak of the parabola through three equally spaced values
    around a maximum ``v0``; 0 when they do not curve downwards."""
    d = vm - 2 * v0 + vp
    return 0.0 if d >= 0 else float(np.clip(0.5 * (vm - vp) / d, -0.5, 0.5))


def _refine(
    cross: np.ndarray, size: tuple[int, int], den: np.ndarray, iy: int, ix: int
) -> tuple[float, float]:
    """Sub-pixel peak near integer lag ``(iy, ix)`` by a matrix DFT of the cross-power spectrum."""
    ny, nx = size
    offs = np.arange(-UPSAMPLE, UPSAMPLE + 1) / UPSAMPLE  # +-1 px
    ys, xs = iy + offs, ix + offs
    ky = np.fft.fftfreq(ny, d=1.0) * ny
    kx = np.arange(cross.shape[1], dtype=np.float64)
    wx = np.full(kx.shape, 2.0)
    wx[0] = 1.0
    if nx % 2 == 0:
        wx[-1] = 1.0
    ey = np.exp(2j * np.pi * np.outer(ys, ky) / ny)  # (len(ys), ny)
    ex = np.exp(2j * np.pi * np.outer(kx, xs) / nx)  # (nkx, len(xs))
    num = (ey @ (cross * wx[np.newaxis, :]) @ ex).real / (ny * nx)
    # denominator: bilinear between the integer samples around the peak (it varies slowly)
    h, w = den.shape
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - np.floor(ys))[:, None], (xs - np.floor(xs))[None, :]
    d = (
        den[np.ix_(y0, x0)] * (1 - fy) * (1 - fx)
        + den[np.ix_(y1, x0)] * fy * (1 - fx)
        + den[np.ix_(y0, x1)] * (1 - fy) * fx
        + den[np.ix_(y1, x1)] * fy * fx
    )
    surf = num / np.maximum(d, 1e-12)
    jj, ii = np.unravel_index(int(np.argmax(surf)), surf.shape)
    j = int(np.clip(jj, 1, len(ys) - 2))
    i = int(np.clip(ii, 1, len(xs) - 2))
    fy_ = parabola_peak(surf[j - 1, i], surf[j, i], surf[j + 1, i]) / UPSAMPLE
    fx_ = parabola_peak(surf[j, i - 1], surf[j, i], surf[j, i + 1]) / UPSAMPLE
    return float(ys[j] + fy_), float(xs[i] + fx_)


def _pool(a: np.ndarray, f: int) -> np.ndarray:
    c, h, w = a.shape
    h2, w2 = h // f, w // f
    return a[:, : h2 * f, : w2 * f].reshape(c, h2, f, w2, f).mean(axis=(2, 4))


def search_shift(
    template: np.ndarray,
    search: np.ndarray,
    max_shift: int,
    subpixel: bool = True,
    lobe_radius: int = LOBE_RADIUS,
) -> Match:
    """Single-level exhaustive search over ``|dx|, |dy| <= max_shift`` (see module doc)."""
    c, h, w = template.shape
    if search.shape != (c, h + 2 * max_shift, w + 2 * max_shift):
        raise ValueError(
            f"search volume {search.shape} does not match template {template.shape} "
            f"with max_shift {max_shift}"
        )
    ncc, cross, den, size = _ncc_surface(template, search)
    iy, ix = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    peak = float(ncc[iy, ix])
    second = _second_peak(ncc, int(iy), int(ix), lobe_radius)
    reliability = peak / max(second, 1e-3) if peak > 0 else 0.0
    # the peak touches the edge when its main lobe reaches the border: the true peak may lie beyond
    e = min(lobe_radius, (max_shift - 1) // 2)
    at_limit = not (e <= iy <= ncc.shape[0] - 1 - e and e <= ix <= ncc.shape[1] - 1 - e)
    fy, fx = float(iy), float(ix)
    if subpixel and not at_limit:
        fy, fx = _refine(cross, size, den, int(iy), int(ix))
    return Match(
        dx=fx - max_shift,
        dy=fy - max_shift,
        score=peak,
        reliability=reliability,
        at_limit=at_limit,
        distinctness=_distinctness(ncc, peak, _second_local_peak(ncc, int(iy), int(ix), LOBE_RADIUS)),
    )


def coarse_levels_for(max_shift: int) -> int:
    """Pyramid levels so that the coarsest search radius is at most :data:`COARSE_MAX_SHIFT`."""
    if max_shift <= COARSE_MAX_SHIFT:
        return 0
    return math.ceil(math.log2(max_shift / COARSE_MAX_SHIFT))


def match(
    template: np.ndarray, search: np.ndarray, max_shift: int, levels: int | None = None, subpixel: bool = True
) -> Match:
    """Coarse-to-fine search; ``levels=None`` picks :func:`coarse_levels_for`."""
    if levels is None:
        # coarse enough for the search radius, but the pooled template keeps >= MIN_COARSE_SIZE pixels
        size = min(template.shape[1:])
        levels = min(coarse_levels_for(max_shift), math.floor(math.log2(max(size, 1) / MIN_COARSE_SIZE)))
    if levels <= 0:
        return search_shift(template, search, max_shift, subpixel)
    f = 2**levels
    mc = max_shift // f
    if mc < 1 or max_shift <= f:  # the fine window (radius f + 1) would not fit in the search margin
        return search_shift(template, search, max_shift, subpixel)
    _, h, w = template.shape
    # coarse: template pooled, search cropped so that its margin is exactly mc * f
    crop = max_shift - mc * f
    s = search[:, crop : crop + h + 2 * mc * f, crop : crop + w + 2 * mc * f]
    tc, sc = _pool(template, f), _pool(s, f)
    # pooled shapes must stay consistent: template h//f, search (h + 2 mc f)//f = h//f + 2 mc when f | h
    hc, wc = tc.shape[1:]
    sc = sc[:, : hc + 2 * mc, : wc + 2 * mc]
    coarse = search_shift(tc, sc, mc, subpixel=False, lobe_radius=max(2, LOBE_RADIUS // 2))
    cy, cx = round(coarse.dy) * f, round(coarse.dx) * f
    r = f + 1
    # fine: search window of radius r around the coarse estimate, clipped to the available margin
    y0 = max_shift + cy - r
    x0 = max_shift + cx - r
    y0c, x0c = min(max(y0, 0), 2 * max_shift - 2 * r), min(max(x0, 0), 2 * max_shift - 2 * r)
    fine = search_shift(template, search[:, y0c : y0c + h + 2 * r, x0c : x0c + w + 2 * r], r, subpixel)
    dy = fine.dy + (y0c - max_shift + r)
    dx = fine.dx + (x0c - max_shift + r)
    near = max_shift - 1
    at_limit = coarse.at_limit or (fine.at_limit and (abs(dy) >= near or abs(dx) >= near))
    return Match(
        dx=dx,
        dy=dy,
        score=fine.score,
        reliability=coarse.reliability,
        at_limit=at_limit,
        distinctness=coarse.distinctness,
    )
