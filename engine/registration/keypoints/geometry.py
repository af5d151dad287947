"""Projective geometry of keypoint registration: model fits, RANSAC, degeneracy checks.

Every transform is a 3 x 3 matrix ``H`` acting on pixel-corner coordinates
``(x, y) = (col, row)`` (GDAL's convention: pixel ``(c, r)`` has its centre at
``(c + 0.5, r + 0.5)``): ``[x', y', w']^T = H [x, y, 1]^T``, ``(x'/w', y'/w')``.
Three models: ``similarity`` (rotation, isotropic scale, shift), ``affine`` and
``homography``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ...errors import InputError, RegistrationError

logger = logging.getLogger(__name__)

KINDS = ("similarity", "affine", "homography")
MIN_SAMPLE = {"similarity": 2, "affine": 3, "homography": 4}
"""Points that determine each model (the RANSAC sample size)."""
SCALE_LIMITS = (1.0 / 8.0, 8.0)
"""Local scale (sqrt of the Jacobian determinant) a registration may have; outside it is refused."""
MAX_ANISOTROPY = 20.0
"""Largest ratio of the local singular values (near-singular beyond it)."""


def check_kind(kind: str) -> str:
    """Raise :class:`InputError` unless ``kind`` is one of :data:`KINDS`."""
    if kind not in KINDS:
        raise InputError(f"Unknown transform '{kind}'; use one of {', '.join(KINDS)}.")
    return kind


def project(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply ``h`` to ``(n, 2)`` points; points sent to infinity become NaN."""
    xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
    p = xy @ h[:, :2].T + h[:, 2]
    w = p[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p[:, :2] / np.where(np.abs(w) > 1e-12, w, np.nan)
    return out


def grid_sources(h: np.ndarray, rows: int, cols: int, row0: int = 0) -> list[np.ndarray]:
    """Where the pixel centres of grid rows ``row0 .. row0 + rows`` (``cols`` wide) come from in the INPUT.

    ``h`` maps INPUT pixel-corner coordinates to the grid's; the result is ``[row, column]``: two flat
    arrays of INPUT pixel-centre indices, the coordinates :func:`scipy.ndimage.map_coordinates` takes.
    Centres whose source lies at infinity get a position far outside the INPUT.
    """
    yy, xx = np.mgrid[row0:row0 + rows, 0:cols]
    p = project(np.linalg.inv(h), np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)) - 0.5
    p = np.nan_to_num(p, nan=-1e9)
    return [p[:, 1], p[:, 0]]


def warp_onto(img: np.ndarray, valid: np.ndarray, h: np.ndarray, shape: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray]:
    """``img`` resampled (bilinear) onto a ``shape`` grid by the INPUT -> grid map ``h``, and where the
    result is valid (all four source pixels valid)."""
    from scipy import ndimage

    coords = grid_sources(h, *shape)
    out = ndimage.map_coordinates(img, coords, order=1, cval=0.0).reshape(shape)
    ok = ndimage.map_coordinates(valid.astype(np.float32), coords, order=1, cval=0.0).reshape(shape)
    return out.astype(np.float32), ok > 0.999


def _fit_normalised(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    n = len(a)
    x, y, u, v = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    one, zero = np.ones(n), np.zeros(n)
    if kind == "similarity":  # u = p x - q y + tx, v = q x + p y + ty
        m = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
        p, q, tx, ty = np.linalg.lstsq(m, np.concatenate([u, v]), rcond=None)[0]
        return np.array([[p, -q, tx], [q, p, ty], [0, 0, 1]])
    if kind == "affine":
        m = np.stack([x, y, one], 1)
        rx = np.linalg.lstsq(m, u, rcond=None)[0]
        ry = np.linalg.lstsq(m, v, rcond=None)[0]
        return np.array([rx, ry, [0, 0, 1]])
    rows = np.concatenate([
        np.stack([-x, -y, -one, zero, zero, zero, u * x, u * y, u], 1),
        np.stack([zero, zero, zero, -x, -y, -one, v * x, v * y, v], 1),
    ])
    _, _, vt = np.linalg.svd(rows)
    return vt[-1].reshape(3, 3)


def fit_model(src: np.ndarray, dst: np.ndarray, kind: str) -> np.ndarray:
    """Least-squares ``kind`` transform mapping ``src`` to ``dst`` ((n, 2) each); normalised DLT."""
    check_kind(kind)
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if len(src) < MIN_SAMPLE[kind]:
        raise RegistrationError(
            f"A {kind} needs at least {MIN_SAMPLE[kind]} point pairs, {len(src)} given."
        )
    ta, tb = _normalisers(src[None])[0], _normalisers(dst[None])[0]
    an = project(ta, src)
    bn = project(tb, dst)
    s, cx, cy = tb[0, 0], -tb[0, 2] / tb[0, 0], -tb[1, 2] / tb[0, 0]
    tb_inv = np.array([[1 / s, 0, cx], [0, 1 / s, cy], [0, 0, 1]])
    h = tb_inv @ _fit_normalised(an, bn, kind) @ ta
    if abs(h[2, 2]) > 1e-12:
        h = h / h[2, 2]
    return h


def reprojection_errors(h: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Distance (pixels) between ``h(src)`` and ``dst``; infinite where ``h`` sends a point to infinity."""
    d = np.hypot(*(project(h, src) - np.asarray(dst, dtype=np.float64)).T)
    return np.where(np.isfinite(d), d, np.inf)


def local_jacobians(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``(n, 2, 2)`` Jacobians of ``h`` at ``xy``."""
    xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
    p = xy @ h[:, :2].T + h[:, 2]
    w = p[:, 2]
    u, v = p[:, 0] / w, p[:, 1] / w
    jac = np.empty((len(xy), 2, 2))
    jac[:, 0, 0] = (h[0, 0] - u * h[2, 0]) / w
    jac[:, 0, 1] = (h[0, 1] - u * h[2, 1]) / w
    jac[:, 1, 0] = (h[1, 0] - v * h[2, 0]) / w
    jac[:, 1, 1] = (h[1, 1] - v * h[2, 1]) / w
    return jac


def degeneracy(h: np.ndarray, width: float, height: float) -> str | None:
    """Why ``h`` cannot be a registration of a ``width x height`` image, or ``None`` if it can.

    Refused: a non-finite or singular matrix; a fold (the horizon ``w = 0`` crosses
    the image, or the Jacobian changes sign / flips orientation); a near-singular
    local map (singular-value ratio > :data:`MAX_ANISOTROPY`); a local scale outside
    :data:`SCALE_LIMITS`. Checked on a 5 x 5 grid over the image, corners included.
    """
    if not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-12 * max(1.0, float(np.abs(h).max()) ** 3):
        return "the matrix is singular or not finite"
    xs, ys = np.meshgrid(np.linspace(0, width, 5), np.linspace(0, height, 5))
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    w = grid @ h[2, :2] + h[2, 2]
    if not (np.all(w > 0) or np.all(w < 0)):
        return "it folds the image (its horizon line crosses the image)"
    jac = local_jacobians(h, grid)
    det = np.linalg.det(jac)
    if np.any(det <= 0):
        return "it folds or mirrors the image (negative Jacobian determinant)"
    sv = np.linalg.svd(jac, compute_uv=False)
    if np.any(sv[:, 0] > MAX_ANISOTROPY * sv[:, 1]):
        return f"it is near-singular (local stretch ratio above {MAX_ANISOTROPY:g})"
    scale = np.sqrt(det)
    lo, hi = SCALE_LIMITS
    if scale.min() < lo or scale.max() > hi:
        return (f"its scale ({scale.min():.3g} to {scale.max():.3g}) is outside {lo:g} to {hi:g}")
    return None


def _normalisers(pts: np.ndarray) -> np.ndarray:
    """Batched Hartley normalisation matrices of ``(b, m, 2)`` point sets."""
    c = pts.mean(axis=1)
    d = np.hypot(*(pts - c[:, None]).transpose(2, 0, 1)).mean(axis=1)
    s = np.sqrt(2.0) / np.maximum(d, 1e-9)
    t = np.zeros((len(pts), 3, 3))
    t[:, 0, 0] = t[:, 1, 1] = s
    t[:, 0, 2], t[:, 1, 2], t[:, 2, 2] = -s * c[:, 0], -s * c[:, 1], 1.0
    return t


def _batch_minimal(src: np.ndarray, dst: np.ndarray, kind: str) -> np.ndarray:
    """Exact ``kind`` transforms of ``b`` minimal samples ``(b, m, 2)`` -> ``(b, 3, 3)`` (NaN if singular)."""
    b = len(src)
    h = np.zeros((b, 3, 3))
    h[:, 2, 2] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "similarity":
            z = src[..., 0] + 1j * src[..., 1]
            w = dst[..., 0] + 1j * dst[..., 1]
            a = (w[:, 1] - w[:, 0]) / (z[:, 1] - z[:, 0])
            t = w[:, 0] - a * z[:, 0]
            h[:, 0, 0], h[:, 0, 1], h[:, 0, 2] = a.real, -a.imag, t.real
            h[:, 1, 0], h[:, 1, 1], h[:, 1, 2] = a.imag, a.real, t.imag
            return h
        ta, tb = _normalisers(src), _normalisers(dst)
        an = np.einsum("bij,bmj->bmi", ta[:, :2, :2], src) + ta[:, None, :2, 2]
        bn = np.einsum("bij,bmj->bmi", tb[:, :2, :2], dst) + tb[:, None, :2, 2]
        if kind == "affine":
            m = np.concatenate([an, np.ones((b, 3, 1))], axis=2)
            ok = np.abs(np.linalg.det(m)) > 1e-9
            m[~ok] = np.eye(3)
            sol = np.linalg.solve(m, bn)  # (b, 3, 2)
            hn = np.zeros((b, 3, 3))
            hn[:, :2, :] = sol.transpose(0, 2, 1)
            hn[:, 2, 2] = 1.0
            hn[~ok] = np.nan
        else:
            x, y, u, v = an[..., 0], an[..., 1], bn[..., 0], bn[..., 1]
            one, zero = np.ones_like(x), np.zeros_like(x)
            r1 = np.stack([-x, -y, -one, zero, zero, zero, u * x, u * y, u], axis=2)
            r2 = np.stack([zero, zero, zero, -x, -y, -one, v * x, v * y, v], axis=2)
            _, _, vt = np.linalg.svd(np.concatenate([r1, r2], axis=1))
            hn = vt[:, -1].reshape(b, 3, 3)
        inv_tb = np.zeros_like(tb)
        inv_tb[:, 0, 0] = inv_tb[:, 1, 1] = 1.0 / tb[:, 0, 0]
        inv_tb[:, 0, 2], inv_tb[:, 1, 2] = -tb[:, 0, 2] / tb[:, 0, 0], -tb[:, 1, 2] / tb[:, 0, 0]
        inv_tb[:, 2, 2] = 1.0
        h = inv_tb @ hn @ ta
        h /= h[:, 2:3, 2:3]
    return h


def _batch_inliers(h: np.ndarray, src: np.ndarray, dst: np.ndarray, threshold: float) -> np.ndarray:
    """``(b, n)`` inlier masks of ``b`` hypotheses."""
    p = np.einsum("bij,nj->bni", h[:, :, :2], src) + h[:, None, :, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = p[..., :2] / p[..., 2:3]
        d2 = ((q - dst[None]) ** 2).sum(axis=2)
    return np.nan_to_num(d2, nan=np.inf) < threshold * threshold


def _samples_ok(pts: np.ndarray) -> np.ndarray:
    """``(b,)`` False for samples with (nearly) repeated or collinear points."""
    m = pts.shape[1]
    ok = np.ones(len(pts), bool)
    for i in range(m):
        for j in range(i + 1, m):
            ok &= np.hypot(*(pts[:, i] - pts[:, j]).T) > 1.0
            for k in range(j + 1, m):
                a, c = pts[:, j] - pts[:, i], pts[:, k] - pts[:, i]
                cross = np.abs(a[:, 0] * c[:, 1] - a[:, 1] * c[:, 0])
                ok &= cross > 1e-2 * np.hypot(*a.T) * np.hypot(*c.T)
    return ok


@dataclass(frozen=True)
class RansacResult:
    """A RANSAC fit: the matrix, the inlier mask and the inliers' RMSE (pixels)."""

    matrix: np.ndarray
    inliers: np.ndarray
    rmse: float

    @property
    def n_inliers(self) -> int:
        return int(self.inliers.sum())


def _refine(src: np.ndarray, dst: np.ndarray, h: np.ndarray, kind: str, threshold: float) -> np.ndarray:
    """Local optimisation: refit on the inliers a few times."""
    for _ in range(3):
        inl = reprojection_errors(h, src, dst) < threshold
        if inl.sum() < MIN_SAMPLE[kind] + 1:
            break
        h = fit_model(src[inl], dst[inl], kind)
    return h


def ransac(
    src: np.ndarray,
    dst: np.ndarray,
    kind: str,
    threshold: float,
    size: tuple[float, float],
    *,
    max_iterations: int = 4000,
    confidence: float = 0.999,
    seed: int = 0,
    refused: list[tuple[int, str]] | None = None,
) -> RansacResult | None:
    """Robust ``kind`` fit of ``src -> dst`` (LO-RANSAC, hypotheses in batches, adaptive stopping).

    Hypotheses that :func:`degeneracy` refuses for an image of ``size = (width, height)``
    are skipped (``(support, reason)`` of each is appended to ``refused``).
    Returns ``None`` when no acceptable hypothesis exists.
    """
    check_kind(kind)
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n, m = len(src), MIN_SAMPLE[kind]
    if n < m:
        return None
    rng = np.random.default_rng(seed)
    best_h: np.ndarray | None = None
    best_count, needed, drawn = 0, max_iterations, 0
    while drawn < min(needed, max_iterations):
        batch = 256
        drawn += batch
        idx = np.argsort(rng.random((batch, n)), axis=1)[:, :m]
        s, d = src[idx], dst[idx]
        ok = _samples_ok(s) & _samples_ok(d)
        if not ok.any():
            continue
        hs = _batch_minimal(s[ok], d[ok], kind)
        counts = _batch_inliers(hs, src, dst, threshold).sum(axis=1)
        for k in np.argsort(-counts, kind="stable")[:4]:
            if counts[k] <= max(best_count, m) or not np.all(np.isfinite(hs[k])):
                break
            h = hs[k]
            problem = degeneracy(h, *size)
            if problem is None:
                h = _refine(src, dst, h, kind, threshold)
                problem = degeneracy(h, *size)
            count = int((reprojection_errors(h, src, dst) < threshold).sum())
            if problem is not None:
                if refused is not None:
                    refused.append((int(counts[k]), problem))
                continue
            if count > best_count:
                best_h, best_count = h, count
                denom = np.log(max(1e-12, 1 - (best_count / n) ** m))
                needed = int(np.ceil(np.log(1 - confidence) / denom)) if denom < 0 else drawn
    if best_h is None:
        return None
    err = reprojection_errors(best_h, src, dst)
    inliers = err < threshold
    return RansacResult(best_h, inliers, float(np.sqrt(np.mean(err[inliers] ** 2))))


def corner_error(h_est: np.ndarray, h_true: np.ndarray, width: float, height: float) -> float:
    """Mean distance (pixels) between the image corners mapped by the two transforms."""
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    d = np.hypot(*(project(h_est, corners) - project(h_true, corners)).T)
    return float(np.mean(d)) if np.all(np.isfinite(d)) else float("inf")
