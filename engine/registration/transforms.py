"""The transforms of registration, for both front ends: one table of kinds, one convention, fit and apply.

Convention. A transform maps a point of the INPUT to where its content lies in the REFERENCE (the
shift front measures against the reference resampled onto the INPUT's grid, so both sides are INPUT
pixels, or map units for a saved report; the keypoint front maps to REFERENCE pixels). Points are
``(x, y) = (column, row)`` in pixel-corner coordinates, GDAL's convention: pixel ``(c, r)`` covers
``[c, c + 1) x [r, r + 1)`` and has its centre at ``(c + 0.5, r + 0.5)``.

Kinds (:data:`KINDS`): ``shift``, ``similarity``, ``affine``, ``homography``, ``poly2``, ``poly3``, each
with the points that determine it (:attr:`Kind.min_sample`, the RANSAC sample) and the points a fit
needs before it is tried or refined (:attr:`Kind.required_points`: the minimum plus redundancy to check
it). Each front offers its subset (:data:`SHIFT_KINDS`, :data:`MATRIX_KINDS`).

Two parameterisations of the same convention:

- a projective 3 x 3 matrix ``H`` (similarity, affine, homography; the keypoint front):
  ``[x', y', w']^T = H [x, y, 1]^T``, fitted by least squares on Hartley-normalised points
  (normalised DLT for the homography): :func:`fit_matrix`, :func:`project`, inverse ``np.linalg.inv``;
- a displacement polynomial :class:`Transform` (shift, affine, poly2, poly3; the shift front, whose
  report saves it): ``T(p) = p + D(u)``, ``D`` a polynomial of ``u = (p - center) / scale``:
  :func:`fit_transform`, ``Transform.__call__``, :meth:`Transform.matrix` for shift and affine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, RegistrationError, check_choice


@dataclass(frozen=True)
class Kind:
    """One transform kind: its sample size, the points a fit needs, its polynomial degree if it has one."""

    name: str
    min_sample: int
    """Points that determine it exactly (the RANSAC minimal sample)."""
    required_points: int
    """Points needed before a fit is tried (shift front) or refined on its inliers (RANSAC's local
    optimisation): the minimum plus redundancy to check it."""
    degree: int | None = None
    """Degree of the displacement polynomial (:class:`Transform`); ``None``: a 3 x 3 matrix only."""


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("shift", 1, 1, degree=0),
    Kind("similarity", 2, 3),
    Kind("affine", 3, 4, degree=1),
    Kind("homography", 4, 5),
    Kind("poly2", 6, 8, degree=2),
    Kind("poly3", 10, 13, degree=3),
)}
SHIFT_KINDS = ("shift", "affine", "poly2", "poly3")
"""What shift co-registration fits (displacement polynomials, saved in its report)."""
MATRIX_KINDS = ("similarity", "affine", "homography")
"""What keypoint registration fits (3 x 3 matrices)."""
SCALE_LIMITS = (1.0 / 8.0, 8.0)
"""Local scale (sqrt of the Jacobian determinant) a matrix registration may have; outside it is refused."""
MAX_ANISOTROPY = 20.0
"""Largest ratio of the local singular values (near-singular beyond it)."""


def check_kind(kind: str, offered: tuple[str, ...]) -> str:
    """Raise :class:`InputError` unless ``kind`` is one of the ``offered`` kinds."""
    return check_choice(kind, offered, "transform")


# ------------------------------------------------------------------ 3 x 3 matrices
def project(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply ``h`` to ``(n, 2)`` points; points sent to infinity become NaN."""
    xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
    p = xy @ h[:, :2].T + h[:, 2]
    w = p[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p[:, :2] / np.where(np.abs(w) > 1e-12, w, np.nan)
    return out


def normalisers(pts: np.ndarray) -> np.ndarray:
    """Batched Hartley normalisation matrices of ``(b, m, 2)`` point sets."""
    c = pts.mean(axis=1)
    d = np.hypot(*(pts - c[:, None]).transpose(2, 0, 1)).mean(axis=1)
    s = np.sqrt(2.0) / np.maximum(d, 1e-9)
    t = np.zeros((len(pts), 3, 3))
    t[:, 0, 0] = t[:, 1, 1] = s
    t[:, 0, 2], t[:, 1, 2], t[:, 2, 2] = -s * c[:, 0], -s * c[:, 1], 1.0
    return t


def _fit_normalised(a: np.ndarray, b: np.ndarray, kind: str, root_w: np.ndarray | None = None) -> np.ndarray:
    n = len(a)
    x, y, u, v = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    one, zero = np.ones(n), np.zeros(n)
    rw = None if root_w is None else np.concatenate([root_w, root_w])[:, None]  # each point's two equations
    if kind == "similarity":  # u = p x - q y + tx, v = q x + p y + ty
        m = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
        rhs = np.concatenate([u, v])
        if rw is not None:
            m, rhs = m * rw, rhs * rw[:, 0]
        p, q, tx, ty = np.linalg.lstsq(m, rhs, rcond=None)[0]
        return np.array([[p, -q, tx], [q, p, ty], [0, 0, 1]])
    if kind == "affine":
        m = np.stack([x, y, one], 1)
        if root_w is not None:
            m, u, v = m * root_w[:, None], u * root_w, v * root_w
        rx = np.linalg.lstsq(m, u, rcond=None)[0]
        ry = np.linalg.lstsq(m, v, rcond=None)[0]
        return np.array([rx, ry, [0, 0, 1]])
    rows = np.concatenate([
        np.stack([-x, -y, -one, zero, zero, zero, u * x, u * y, u], 1),
        np.stack([zero, zero, zero, -x, -y, -one, v * x, v * y, v], 1),
    ])
    if rw is not None:
        rows = rows * rw
    # the reduced SVD has the same right singular vectors and skips U (2n x 2n in the full one); with
    # fewer than 9 rows only the full one holds the null vector
    _, _, vt = np.linalg.svd(rows, full_matrices=len(rows) < rows.shape[1])
    return vt[-1].reshape(3, 3)


def fit_matrix(src: np.ndarray, dst: np.ndarray, kind: str, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares ``kind`` matrix mapping ``src`` to ``dst`` ((n, 2) each); normalised DLT. With
    ``weights`` ((n,), finite, >= 0, not all 0; ValueError otherwise) each point's equations count by its
    weight (weighted least squares)."""
    check_kind(kind, MATRIX_KINDS)
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    need = KINDS[kind].min_sample
    if len(src) < need:
        raise RegistrationError(f"A {kind} needs at least {need} point pairs, {len(src)} given.")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(src),) or not (np.isfinite(weights).all() and (weights >= 0).all()
                                                and weights.sum() > 0):
            raise ValueError(f"fit weights must be {len(src)} finite values >= 0, not all 0")
    ta, tb = normalisers(src[None])[0], normalisers(dst[None])[0]
    an = project(ta, src)
    bn = project(tb, dst)
    s, cx, cy = tb[0, 0], -tb[0, 2] / tb[0, 0], -tb[1, 2] / tb[0, 0]
    tb_inv = np.array([[1 / s, 0, cx], [0, 1 / s, cy], [0, 0, 1]])
    root_w = None if weights is None else np.sqrt(weights)
    h = tb_inv @ _fit_normalised(an, bn, kind, root_w) @ ta
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


def corner_error(h_est: np.ndarray, h_true: np.ndarray, width: float, height: float) -> float:
    """Mean distance (pixels) between the image corners mapped by the two transforms."""
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    d = np.hypot(*(project(h_est, corners) - project(h_true, corners)).T)
    return float(np.mean(d)) if np.all(np.isfinite(d)) else float("inf")


# ------------------------------------------------------------------ displacement polynomials
def poly_terms(u: np.ndarray, degree: int) -> np.ndarray:
    """Design matrix of monomials x^i y^j, i + j <= degree (constant first, then x, y, ...)."""
    x, y = u[..., 0], u[..., 1]
    cols = [x ** (d - j) * y**j for d in range(degree + 1) for j in range(d + 1)]
    return np.stack(cols, axis=-1)


def degree_of(kind: str) -> int:
    """The displacement polynomial's degree of a shift-front kind."""
    degree = KINDS[check_kind(kind, SHIFT_KINDS)].degree
    assert degree is not None
    return degree


@dataclass(frozen=True)
class Transform:
    """A fitted displacement model (see module doc)."""

    kind: str
    center: tuple[float, float]
    scale: float
    coef_x: tuple[float, ...]
    coef_y: tuple[float, ...]

    @property
    def degree(self) -> int:
        return degree_of(self.kind)

    def displacement(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        u = (xy - np.asarray(self.center)) / self.scale
        a = poly_terms(u, self.degree)
        return np.stack([a @ np.asarray(self.coef_x), a @ np.asarray(self.coef_y)], axis=1)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        return xy + self.displacement(xy)

    @property
    def is_affine(self) -> bool:
        return self.degree <= 1

    def matrix(self) -> np.ndarray:
        """3x3 homogeneous matrix of a shift/affine transform (raises for polynomials)."""
        if not self.is_affine:
            raise ValueError(f"a {self.kind} transform is not affine")
        cx, cy = self.center
        s = self.scale
        if self.degree == 0:
            return np.array([[1, 0, self.coef_x[0]], [0, 1, self.coef_y[0]], [0, 0, 1]], dtype=np.float64)
        ax0, ax1, ax2 = self.coef_x
        ay0, ay1, ay2 = self.coef_y
        a = np.array([[1 + ax1 / s, ax2 / s], [ay1 / s, 1 + ay2 / s]])
        t = np.array([ax0, ay0]) - a @ np.array([cx, cy]) + np.array([cx, cy])
        return np.array([[a[0, 0], a[0, 1], t[0]], [a[1, 0], a[1, 1], t[1]], [0, 0, 1]])

    def mean_shift(self) -> tuple[float, float]:
        """Displacement at the centre of the fitted points."""
        return float(self.coef_x[0]), float(self.coef_y[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "center": list(self.center),
            "scale": self.scale,
            "coef_x": list(self.coef_x),
            "coef_y": list(self.coef_y),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transform:
        try:
            kind = check_kind(str(data["kind"]), SHIFT_KINDS)
            t = cls(
                kind,
                (float(data["center"][0]), float(data["center"][1])),
                float(data["scale"]),
                tuple(float(v) for v in data["coef_x"]),
                tuple(float(v) for v in data["coef_y"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(
                f"The saved transform is incomplete or invalid ({exc}); use a report written "
                "by sartoolbox:coregister."
            ) from exc
        n = (t.degree + 1) * (t.degree + 2) // 2
        values = np.array([*t.center, t.scale, *t.coef_x, *t.coef_y])
        if len(t.coef_x) != n or len(t.coef_y) != n or not t.scale > 0 or not np.isfinite(values).all():
            raise InputError(
                f"The saved {kind} transform must have {n} finite coefficients per axis, a finite "
                "centre and a positive scale; use a report written by sartoolbox:coregister."
            )
        return t


def normalisation(src: np.ndarray) -> tuple[tuple[float, float], float]:
    """(center, scale) that :class:`Transform` normalises ``src`` coordinates by."""
    center = src.mean(axis=0)
    scale = float(np.abs(src - center).max()) if len(src) > 1 else 1.0
    return (float(center[0]), float(center[1])), max(scale, 1e-9)


def fit_transform(
    src: np.ndarray, dst: np.ndarray, kind: str, norm: tuple[tuple[float, float], float] | None = None
) -> Transform:
    """Least-squares fit of ``dst ~ T(src)``; ``norm`` fixes (center, scale) of the coordinates."""
    degree = degree_of(kind)
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    need = KINDS[kind].min_sample
    if len(src) < need:
        raise RegistrationError(f"A {kind} transform needs at least {need} points, got {len(src)}.")
    center, scale = norm if norm is not None else normalisation(src)
    u = (src - np.asarray(center)) / scale
    a = poly_terms(u, degree)
    d = dst - src
    coef, *_ = np.linalg.lstsq(a, d, rcond=None)
    return Transform(
        kind, center, scale, tuple(float(v) for v in coef[:, 0]), tuple(float(v) for v in coef[:, 1])
    )


def residuals(t: Transform, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Per-point residual vectors ``dst - T(src)`` (n, 2)."""
    return np.asarray(dst, dtype=np.float64) - t(src)


def distortion(t: Transform, width: float, height: float, samples: int = 9) -> tuple[float, float]:
    """Largest scale change (relative) and rotation (degrees) of ``t`` over a ``width`` x ``height`` frame.

    From the Jacobian of ``t`` at a grid of points (exact for shift/affine); a fold
    (negative determinant) counts as an infinite scale change.
    """
    xs, ys = np.meshgrid(np.linspace(0, width, samples), np.linspace(0, height, samples))
    p = np.stack([xs.ravel(), ys.ravel()], axis=1)
    ex, ey = np.array([0.5, 0.0]), np.array([0.0, 0.5])
    jx = t(p + ex) - t(p - ex)  # d T / dx, (n, 2)
    jy = t(p + ey) - t(p - ey)
    scale, rotation = 0.0, 0.0
    for a, b in zip(jx, jy, strict=True):
        j = np.stack([a, b], axis=1)  # columns: dT/dx, dT/dy
        if np.linalg.det(j) <= 0:
            return float("inf"), 180.0
        sv = np.linalg.svd(j, compute_uv=False)
        scale = max(scale, float(np.abs(sv - 1.0).max()))
        angle = np.degrees(np.arctan2(j[1, 0] - j[0, 1], j[0, 0] + j[1, 1]))
        rotation = max(rotation, abs(float(angle)))
    return scale, rotation


def rmse(vectors: np.ndarray) -> float:
    """Root mean square length of (n, 2) vectors (NaN for none)."""
    v = np.asarray(vectors, dtype=np.float64)
    return float(np.sqrt((v**2).sum(axis=1).mean())) if len(v) else float("nan")
