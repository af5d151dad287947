"""The codec's view of a source raster: windows read with mirrored edges, values in the model domain.

Shared by encoding and the restoration filter's fit, which must see the source alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metadata import ModelMetadata
from ..preprocess import to_model_input
from ..tiling import Window


def read_tile(src: Any, band: int, window: Window) -> np.ndarray:
    """``window`` of ``band`` (float64; it may extend beyond the raster: the outside mirrors the inside)."""
    from ..raster_io import read_window

    return read_window(src, band, window, dtype=np.float64, mirror=True)


def model_input(raw: np.ndarray, meta: ModelMetadata, nodata: float | None, input_kind: str,
                shift_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw values -> dB (noise floor) -> + shift -> min-max normalised; invalid pixels 0 / False."""
    return to_model_input(raw, meta, nodata, input_kind, shift_db)
