"""Resampling an image by a 3 x 3 transform (:mod:`..transforms` convention: INPUT pixel-corner
coordinates to the target grid's)."""

from __future__ import annotations

import numpy as np

from ..transforms import project


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
