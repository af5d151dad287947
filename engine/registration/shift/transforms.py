"""Geometric models fitted to tie points: shift, affine, 2nd and 3rd order polynomials.

A :class:`Transform` maps a point ``p`` of the INPUT (pixel or map coordinates)
to where its content lies in the reference, ``T(p) = p + D(u)`` with ``D`` a
polynomial of the normalised coordinates ``u = (p - center) / scale`` (degree 0
for ``shift``, 1 for ``affine``, 2 and 3 for ``poly2``/``poly3``). Fits are
least squares; :func:`ransac_fit` rejects outliers with seeded RANSAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError, RegistrationError

DEGREES = {"shift": 0, "affine": 1, "poly2": 2, "poly3": 3}
"""Polynomial degree of the displacement for each transform name."""

MIN_POINTS = {"shift": 1, "affine": 3, "poly2": 6, "poly3": 10}
"""Points that determine each transform exactly."""

REQUIRED_POINTS = {"shift": 1, "affine": 4, "poly2": 8, "poly3": 13}
"""Reliable points needed before a fit is tried (the minimum plus redundancy to check it)."""

MIN_INLIERS = {"shift": 3, "affine": 6, "poly2": 12, "poly3": 20}
"""Tie points that must agree on a transform (RANSAC inliers) before it is trusted: about twice the
points that determine it, so that a chance agreement of a minimal sample is not taken for a fit."""

MIN_INLIER_SHARE = 0.4
"""Share of the reliable tie points that must agree on the transform."""

LOWER = {"affine": "shift", "poly2": "affine", "poly3": "poly2"}


def check_kind(kind: str) -> str:
    if kind not in DEGREES:
        raise InputError(f"Unknown transform '{kind}'; use one of {', '.join(DEGREES)}.")
    return kind


def _terms(u: np.ndarray, degree: int) -> np.ndarray:
    """Design matrix of monomials x^i y^j, i + j <= degree (constant first, then x, y, ...)."""
    x, y = u[:, 0], u[:, 1]
    cols = [x ** (d - j) * y**j for d in range(degree + 1) for j in range(d + 1)]
    return np.stack(cols, axis=1)


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
        return DEGREES[self.kind]

    def displacement(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        u = (xy - np.asarray(self.center)) / self.scale
        a = _terms(u, self.degree)
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
            kind = check_kind(str(data["kind"]))
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
        if len(t.coef_x) != n or len(t.coef_y) != n or not t.scale > 0:
            raise InputError(
                f"The saved {kind} transform must have {n} coefficients per axis and a "
                "positive scale; use a report written by sartoolbox:coregister."
            )
        return t


def normalisation(src: np.ndarray) -> tuple[tuple[float, float], float]:
    center = src.mean(axis=0)
    scale = float(np.abs(src - center).max()) if len(src) > 1 else 1.0
    return (float(center[0]), float(center[1])), max(scale, 1e-9)


def fit_transform(
    src: np.ndarray, dst: np.ndarray, kind: str, norm: tuple[tuple[float, float], float] | None = None
) -> Transform:
    """Least-squares fit of ``dst ~ T(src)``; ``norm`` fixes (center, scale) of the coordinates."""
    check_kind(kind)
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if len(src) < MIN_POINTS[kind]:
        raise RegistrationError(
            f"A {kind} transform needs at least {MIN_POINTS[kind]} points, got {len(src)}."
        )
    center, scale = norm if norm is not None else normalisation(src)
    u = (src - np.asarray(center)) / scale
    a = _terms(u, DEGREES[kind])
    d = dst - src
    coef, *_ = np.linalg.lstsq(a, d, rcond=None)
    return Transform(
        kind, center, scale, tuple(float(v) for v in coef[:, 0]), tuple(float(v) for v in coef[:, 1])
    )


def residuals(t: Transform, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Per-point residual vectors ``dst - T(src)`` (n, 2)."""
    return np.asarray(dst, dtype=np.float64) - t(src)


def _well_posed(src: np.ndarray, kind: str) -> bool:
    deg = DEGREES[kind]
    if deg == 0:
        return True
    center, scale = normalisation(src)
    a = _terms((src - np.asarray(center)) / scale, deg)
    return int(np.linalg.matrix_rank(a, tol=1e-6)) == a.shape[1]


def ransac_fit(
    src: np.ndarray, dst: np.ndarray, kind: str, threshold: float = 2.0, iterations: int = 500, seed: int = 0
) -> tuple[Transform, np.ndarray]:
    """Fit ``kind`` robustly: returns the transform refitted on the inliers and the inlier mask.

    Raises:
        RegistrationError: not even a minimal, well-spread sample exists.
    """
    check_kind(kind)
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n, k = len(src), MIN_POINTS[kind]
    if n < k:
        raise RegistrationError(f"A {kind} transform needs at least {k} points, got {n}.")
    norm = normalisation(src)
    rng = np.random.default_rng(seed)
    best: np.ndarray | None = None
    best_cost = np.inf
    if n == k:
        trials: list[np.ndarray] = [np.arange(n)]
    else:
        trials = [rng.choice(n, size=k, replace=False) for _ in range(iterations)]
    for idx in trials:
        if not _well_posed(src[idx], kind):
            continue
        t = fit_transform(src[idx], dst[idx], kind, norm)
        r = np.hypot(*residuals(t, src, dst).T)
        inl = r < threshold
        # MSAC cost: inliers count by their residual, outliers by the threshold
        cost = float(np.minimum(r, threshold).__pow__(2).sum())
        if best is None or inl.sum() > best.sum() or (inl.sum() == best.sum() and cost < best_cost):
            best, best_cost = inl, cost
    if best is None or best.sum() < k:
        raise RegistrationError(
            f"No consistent {kind} transform was found among {n} tie points (the points are collinear or "
            "disagree by more than the outlier threshold); use a lower-order transform, a larger WINDOW "
            "or a larger outlier threshold."
        )
    inliers = best
    for _ in range(3):
        t = fit_transform(src[inliers], dst[inliers], kind, norm)
        r = np.hypot(*residuals(t, src, dst).T)
        new = r < threshold
        if new.sum() < k or np.array_equal(new, inliers):
            break
        inliers = new
    t = fit_transform(src[inliers], dst[inliers], kind, norm)
    return t, inliers


def redundant(n_points: int, kind: str) -> bool:
    """Whether ``n_points`` over-determine a ``kind`` transform (so residuals mean something)."""
    return n_points > MIN_POINTS[kind]


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
