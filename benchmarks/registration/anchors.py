"""GeFolki / AROSICS anchors for the co-registration benchmark (runs in the separate anchor venv).

Usage (inside ``bench_output/venv``, which has ``gefolki`` and ``arosics<1.11``):
``python benchmarks/registration/anchors.py METHOD INPUT.tif REFERENCE.tif MAX_SHIFT`` prints one JSON
line ``{"shift_x": .., "shift_y": ..}`` in the engine's convention (pixels of INPUT, positive = the INPUT
content must move right/down). Both rasters must share one grid. Does not import the engine.

Sign conventions (DESIGN.md section 5): GeFolki's median flow (u, v) is minus that shift; AROSICS
``COREG(ref, tgt)`` ``x_shift_px``/``y_shift_px`` equal it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np


def _read(path: str) -> np.ndarray:
    from osgeo import gdal

    ds = gdal.Open(path)
    arr = ds.ReadAsArray().astype(np.float32)
    return arr[:3].mean(axis=0) if arr.ndim == 3 else arr


def _unit(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, [1, 99])
    return np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1).astype(np.float32)


def gefolki_shift(inp: str, ref: str) -> tuple[float, float]:
    import gefolki.adapthist as adapthist
    from gefolki import GEFolki

    original = adapthist.rescale_intensity

    def rescale_int(image: Any, *args: Any, **kwargs: Any) -> Any:
        # GeFolki 1.1.0 indexes with the result under current scikit-image: keep integers
        out = original(image, *args, **kwargs)
        return np.round(out).astype(np.int64) if "out_range" in kwargs else out

    adapthist.rescale_intensity = rescale_int
    moving, fixed = _unit(_read(inp)), _unit(_read(ref))
    # pyramid depth that the image size allows (6 as in GeFolki's optical/radar demo for large images);
    # the top-left crop to a multiple of 2**levels keeps pixel coordinates unchanged
    levels = int(max(1, min(6, np.floor(np.log2(min(moving.shape) / 8)))))
    f = 2**levels
    h, w = (moving.shape[0] // f) * f, (moving.shape[1] // f) * f
    u, v = GEFolki(fixed[:h, :w], moving[:h, :w], iteration=2, radius=range(32, 4, -4), rank=4, levels=levels)
    return -float(np.median(u)), -float(np.median(v))


def arosics_shift(inp: str, ref: str, max_shift: int) -> tuple[float, float]:
    from arosics import COREG

    h, w = _read(inp).shape
    ws = int(min(256, 2 ** np.floor(np.log2(min(h, w) - 2))))
    cr = COREG(ref, inp, ws=(ws, ws), max_shift=max_shift, q=True, nodata=(None, None), ignore_errors=False)
    cr.calculate_spatial_shifts()
    return float(cr.x_shift_px), float(cr.y_shift_px)


def main(argv: list[str]) -> int:
    method, inp, ref, max_shift = argv[0], argv[1], argv[2], int(argv[3])
    if method == "gefolki":
        sx, sy = gefolki_shift(inp, ref)
    elif method == "arosics":
        sx, sy = arosics_shift(inp, ref, max_shift)
    else:
        raise SystemExit(f"unknown anchor {method}")
    print(json.dumps({"shift_x": sx, "shift_y": sy}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
