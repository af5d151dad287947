"""The one image preparation of registration (engine, training and the shipped models).

``prepare_image(array, kind, valid)``; ``kind`` says what the image holds and which of the two
outputs the caller needs:

- a *standardised* image, for keypoint models and the keypoint detectors (``kind`` one of
  :data:`KINDS`): SAR values go to dB (``10 log10`` intensity, ``20 log10`` amplitude, dB as it is);
  an optical image (one grey band, the mean of the chosen reference bands) is used as it is. Then a
  robust z-score over the valid pixels, ``(x - median) / (1.4826 * MAD)``, clipped to [-4, 4] and
  divided by 4, puts both modalities in [-1, 1]; invalid pixels become 0.
- a *filled* image, for the shift front's feature extractors and embedding models (``kind`` one of
  :data:`FILLED_KINDS`), which normalise by themselves: ``log`` compresses with the natural log
  (floor: the 1st percentile of the valid values), ``linear`` keeps the values, ``auto`` takes the
  log when the data look like linear SAR (:func:`engine.input_kind.heavy_tailed`: non-negative,
  99.9th percentile > 20 x median; a display-stretched 8-bit image is left as it is); invalid pixels
  take the median of the valid ones.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, check_choice
from ..input_kind import heavy_tailed
from ..preprocess import linear_to_db

KINDS = ("intensity", "amplitude", "db", "optical")
"""What an image holds: linear SAR intensity or amplitude, SAR in dB, or an optical grey band
(standardised output)."""
FILLED_KINDS = ("auto", "log", "linear")
"""Filled output, log-compressed or not (``auto``: decided from the data)."""
CLIP_SIGMA = 4.0
"""Robust z-scores are clipped to +- this many (MAD-derived) standard deviations."""
MAD_TO_SIGMA = 1.4826
"""MAD of a Gaussian times this is its standard deviation."""


def _domain_values(array: np.ndarray, kind: str, valid: np.ndarray) -> np.ndarray:
    """Values in the domain the z-score is taken in: dB for SAR, as-is for optical (float64)."""
    if kind in ("intensity", "amplitude"):
        positive = valid & (array > 0)
        with np.errstate(invalid="ignore"):
            db = linear_to_db(np.where(positive, array, np.nan), kind)
        return db.astype(np.float64)
    return array.astype(np.float64)


def prepare_image(array: np.ndarray, kind: str, valid: np.ndarray | None = None) -> np.ndarray:
    """A 2-D image -> float32: standardised in [-1, 1] with invalid pixels 0 (``kind`` in :data:`KINDS`)
    or filled (``kind`` in :data:`FILLED_KINDS`); see the module doc.

    Args:
        array: ``(h, w)`` raster values.
        kind: one of :data:`KINDS` or :data:`FILLED_KINDS`.
        valid: ``(h, w)`` bool mask of usable pixels (default: finite values; for linear SAR also > 0).

    Raises:
        InputError: unknown kind or not a 2-D array.
    """
    if kind in FILLED_KINDS:
        ok = np.ones(np.shape(array), bool) if valid is None else np.asarray(valid, dtype=bool)
        return _filled(array, ok, {"auto": None, "log": True, "linear": False}[kind])
    check_choice(kind, KINDS, "image kind")
    arr = np.asarray(array)
    if arr.ndim != 2:
        raise InputError(f"prepare_image takes one 2-D band, got shape {arr.shape}; choose one band.")
    ok = np.isfinite(arr) if valid is None else (np.asarray(valid, dtype=bool) & np.isfinite(arr))
    if kind in ("intensity", "amplitude"):
        with np.errstate(invalid="ignore"):
            ok &= arr > 0
    values = _domain_values(arr, kind, ok)
    out = np.zeros(arr.shape, dtype=np.float32)
    if not ok.any():
        return out
    data = values[ok]
    median = float(np.median(data))
    mad = float(np.median(np.abs(data - median)))
    scale = MAD_TO_SIGMA * mad
    if not scale > 0:  # constant (or nearly) image: fall back to the standard deviation, else flat
        scale = float(data.std()) or 1.0
    z = np.clip((data - median) / scale, -CLIP_SIGMA, CLIP_SIGMA) / CLIP_SIGMA
    out[ok] = z.astype(np.float32)
    return out


def _filled(image: np.ndarray, valid: np.ndarray, log_scale: bool | None) -> np.ndarray:
    """Float32 image with invalid pixels filled, log-compressed when ``log_scale`` (``None``: when the
    values look like linear SAR)."""
    img = np.asarray(image, dtype=np.float32)
    ok = valid & np.isfinite(img)
    if not ok.any():
        return np.zeros_like(img)
    vals = img[ok]
    if log_scale is None:
        log_scale = heavy_tailed(vals)
    if log_scale:
        floor = max(float(np.percentile(vals, 1)), 1e-12)
        img = np.log(np.maximum(img, floor))
        vals = img[ok]
    fill = float(np.median(vals))
    out = np.where(ok, img, fill).astype(np.float32)
    return out
