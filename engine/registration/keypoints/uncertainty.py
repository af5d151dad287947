"""Per-corner uncertainty of a fitted transform, by a bootstrap of its inlier correspondences.

The inliers are resampled with replacement :data:`RESAMPLES` times (seeded), the same
model is fitted to each resample, and each image corner's uncertainty is the RMS
distance of its mapped position from the full fit's. Matches of optical-SAR pairs
are spatially correlated (the bootstrap assumes independent ones), so this is a lower
bound of the corner error, not a guarantee; it shows which corners the data hold least.
"""

from __future__ import annotations

import numpy as np

from ..transforms import KINDS, fit_matrix, project

RESAMPLES = 64


def image_corners(width: float, height: float) -> np.ndarray:
    """The four pixel-corner coordinates of a ``width x height`` image: top-left, top-right, bottom-right,
    bottom-left."""
    return np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])


def corner_uncertainty(src: np.ndarray, dst: np.ndarray, kind: str, width: float, height: float,
                       seed: int = 0) -> np.ndarray:
    """``(4,)`` bootstrap RMS deviation (REFERENCE pixels) of each image corner (order of
    :func:`image_corners`); NaN when there are too few correspondences to resample."""
    n = len(src)
    if n < 2 * KINDS[kind].min_sample:
        return np.full(4, np.nan)
    corners = image_corners(width, height)
    full = project(fit_matrix(src, dst, kind), corners)
    rng = np.random.default_rng(seed)
    moved = []
    for _ in range(RESAMPLES):
        pick = rng.integers(0, n, n)
        if len(np.unique(pick)) < KINDS[kind].min_sample + 1:
            continue
        moved.append(project(fit_matrix(src[pick], dst[pick], kind), corners) - full)
    if not moved:
        return np.full(4, np.nan)
    d = np.stack(moved)
    return np.sqrt(np.nanmean((d**2).sum(axis=2), axis=0))
