"""Array-level translation: SAR values in, display RGB in ``[0, 1]`` out (NaN where the input is invalid)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..metadata import Task
from ..pipeline import apply_tiled
from ..preprocess import to_model_input
from ..run import QUIET, Run
from ..runtime import OnnxModel

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "sar2opt-colourise-v1"
"""The shipped translation model (``models/<id>.onnx``)."""
SYNTHETIC_TAG = "SAR_TOOLBOX_SYNTHETIC_IMAGERY"
"""GeoTIFF tag that marks a translation output as synthetic imagery generated from SAR."""


def default_model_path() -> Path:
    """``<models folder>/<DEFAULT_MODEL_ID>.onnx`` (the folder honours ``$SAR_TOOLBOX_MODELS_DIR``)."""
    from ..setup.bundled import models_dir

    return models_dir() / f"{DEFAULT_MODEL_ID}.onnx"


def load_translation_model(model: OnnxModel | str | os.PathLike[str] | None) -> OnnxModel:
    """The model given (path or loaded), or the shipped one; refuses a model of another task."""
    if isinstance(model, OnnxModel):
        model.metadata.require_task(Task.TRANSLATE, source=f"Model '{model.path.name}'")
        return model
    path = Path(model) if model else default_model_path()
    if not model and not path.is_file():
        raise InputError(
            f"The shipped translation model '{path}' is missing; give MODEL=<a translation .onnx> "
            "or reinstall the plugin."
        )
    return OnnxModel(path, tasks=[Task.TRANSLATE])


def to_display(y: np.ndarray) -> np.ndarray:
    """Network output in ``[-1, 1]`` -> display RGB in ``[0, 1]`` (NaN stays NaN)."""
    return np.clip((np.asarray(y, dtype=np.float32) + 1.0) * 0.5, 0.0, 1.0)


def translate_array(
    values: np.ndarray,
    model: OnnxModel | str | os.PathLike[str] | None = None,
    input_kind: str | None = None,
    nodata: float | None = None,
    batch_size: int = 4,
    run: Run = QUIET,
) -> np.ndarray:
    """Translate one SAR band ``(H, W)`` -> ``(3, H, W)`` display RGB in ``[0, 1]``, NaN where invalid.

    ``input_kind``: 'intensity', 'amplitude' or 'db' (default: what the model expects).
    Any size works: small inputs are padded to one tile, large ones tiled with the model's
    overlap and blended.
    """
    net = load_translation_model(model)
    meta = net.metadata
    if values.ndim != 2:
        raise InputError(f"translate_array needs one SAR band (H, W), got shape {values.shape}.")
    x, valid = to_model_input(values, meta, nodata, input_kind)
    if not valid.any():
        raise InputError("The SAR input has no valid pixel (all nodata, NaN, zero or negative).")
    x[~valid] = np.nan
    out = apply_tiled(
        x,
        net.run,
        tile_size=meta.tile_size,
        overlap=meta.overlap,
        batch_size=batch_size,
        progress=lambda pct: run.progress(pct / 100.0),
        is_cancelled=lambda: run.cancelled,
    )
    assert out is not None
    return to_display(out)
