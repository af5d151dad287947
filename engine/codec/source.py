"""The codec's view of a source raster: windows read with mirrored edges, values in the model domain.

Shared by encoding and the restoration filter's fit, which must see the source alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metadata import ModelMetadata
from ..preprocess import normalise, to_model_domain
from ..tiling import Window


def read_tile(src: Any, band: int, window: Window) -> np.ndarray:
    """Read ``window`` (may extend beyond the raster) and fill the outside by mirroring the inside."""
    from ..raster_io import read_window

    inside = window.intersection(Window(0, 0, src.height, src.width))
    data = read_window(src, band, inside, fill=np.nan, dtype=np.float64)
    pad_rows = window.height - inside.height
    pad_cols = window.width - inside.width
    if pad_rows or pad_cols:
        data = np.pad(data, ((0, pad_rows), (0, pad_cols)), mode="symmetric")
    return data


def model_input(raw: np.ndarray, meta: ModelMetadata, nodata: float | None, input_kind: str,
                shift_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw values -> dB (noise floor) -> + shift -> min-max normalised; invalid pixels 0 / False."""
    values, valid = to_model_domain(raw, meta, nodata, input_kind)
    x = normalise(values + np.float32(shift_db), meta)
    x[~valid] = 0.0
    return x, valid
