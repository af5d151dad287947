"""The homography check of the OSdataset pair: zero residual for the true warp, the offset for a wrong one."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from benchmarks.investigations.osdataset_check import edge_offsets

H_TRUE = np.array([[0.99, 0.20, -14.0], [-0.15, 1.03, 22.0], [-1e-5, 4e-4, 1.02]])


def _warped_mask(h: np.ndarray, size: int = 256) -> np.ndarray:
    """Non-zero area of a bright frame warped by ``h`` (bilinear, zero outside), like cv2.warpPerspective."""
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    src = np.linalg.inv(h) @ np.stack([cols.ravel(), rows.ravel(), np.ones(size * size)])
    x, y = src[0] / src[2], src[1] / src[2]
    frame = np.full((size, size), 200.0)
    warped = ndimage.map_coordinates(frame, [y, x], order=1, mode="grid-constant", cval=0.0)
    return (warped.reshape(size, size) > 0) & np.isfinite(warped.reshape(size, size))


def test_the_true_homography_has_no_residual() -> None:
    offsets = edge_offsets(_warped_mask(H_TRUE), H_TRUE, (256, 256), step=8)
    assert set(offsets) == {"bottom", "right", "left"}
    assert all(abs(v) < 0.1 for v in offsets.values()), offsets


def test_a_two_pixel_error_shows() -> None:
    mask = _warped_mask(H_TRUE)
    down = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]]) @ H_TRUE  # 2 px too low
    right = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ H_TRUE  # 2 px too far right
    assert abs(edge_offsets(mask, down, (256, 256), step=8)["bottom"] + 2.0) < 0.2
    across = edge_offsets(mask, right, (256, 256), step=8)
    assert abs(across["right"] + 2.0) < 0.2 and abs(across["left"] + 2.0) < 0.2
