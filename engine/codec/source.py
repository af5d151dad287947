"""The codec's view of a source raster: windows read with mirrored edges, values in the model domain,
the dB shift that brings a scene into the model's range.

Shared by encoding and the restoration filter's fit, which must see the source alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metadata import ModelMetadata
from ..preprocess import range_shift_db, to_model_domain, to_model_input
from ..run import QUIET, Run
from ..tiling import Window


def read_tile(src: Any, band: int, window: Window) -> np.ndarray:
    """``window`` of ``band`` (float64; it may extend beyond the raster: the outside mirrors the inside)."""
    from ..raster_io import read_window

    return read_window(src, band, window, dtype=np.float64, mirror=True)


def model_input(raw: np.ndarray, meta: ModelMetadata, nodata: float | None, input_kind: str,
                shift_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw values -> dB (noise floor) -> + shift -> min-max normalised; invalid pixels 0 / False."""
    return to_model_input(raw, meta, nodata, input_kind, shift_db)


def auto_shift_db(src: Any, band: int, meta: ModelMetadata, nodata: float | None, input_kind: str,
                  run: Run = QUIET, rows: int = 512) -> float:
    """The dB shift that brings the scene's 1st-99th percentile range into the model's range (0 if inside).

    One streaming pass over the band (strips of ``rows`` rows, progress and cancel through ``run``) into a
    0.05 dB histogram.
    """
    edges = np.arange(-400.0, 400.0 + 0.025, 0.05)
    counts = np.zeros(edges.size - 1, dtype=np.int64)
    for top in run.steps(src.height, rows, "Compression"):
        raw = read_tile(src, band, Window(top, 0, min(rows, src.height - top), src.width))
        values, valid = to_model_domain(raw, meta, nodata, input_kind)
        counts += np.histogram(values[valid], bins=edges)[0]
    total = int(counts.sum())
    if total == 0:
        return 0.0
    cdf = np.cumsum(counts) / total
    low = float(edges[int(np.searchsorted(cdf, 0.01))])
    high = float(edges[min(int(np.searchsorted(cdf, 0.99)) + 1, edges.size - 1)])
    assert meta.db_min is not None and meta.db_max is not None
    return range_shift_db(low, high, meta.db_min, meta.db_max)
