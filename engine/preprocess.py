"""SAR preprocessing: validity masks, linear <-> dB, clipping and normalisation.

Pure numpy, no I/O. The same functions are used by training (to build model
inputs) and by the engine (to run models), so the two cannot drift apart.

Conventions:
- *linear* values are intensity (sigma0, power) or amplitude (``sqrt`` of it);
  intensity dB = ``10 log10(I)``, amplitude dB = ``20 log10(A)``; both give the
  same dB value for the same pixel.
- invalid pixels (0, negative, NaN, +-inf, the nodata value) are masked, never
  propagated: functions return NaN for them (dB domain) or 0 plus ``False`` in
  the validity mask (model input).
"""

from __future__ import annotations

import numpy as np

from .errors import InputError, check_choice
from .metadata import NOISE_FLOOR_DB, InputTransform, ModelMetadata, Normalisation

LINEAR_KINDS: dict[str, float] = {"intensity": 10.0, "amplitude": 20.0}
"""dB factor per kind of linear value: dB = factor * log10(value)."""

INPUT_KINDS = ("intensity", "amplitude", "db")
"""What a raster may contain: linear intensity, linear amplitude or values already in dB."""


def _factor(kind: str) -> float:
    return LINEAR_KINDS[check_choice(kind, LINEAR_KINDS, "kind of SAR values", " (intensity: power, sigma0)")]


def valid_mask(values: np.ndarray, nodata: float | None, positive: bool = True) -> np.ndarray:
    """Boolean mask of usable pixels.

    A pixel is valid when it is finite, differs from ``nodata`` (if given) and,
    when ``positive`` (linear intensity/amplitude), is strictly greater than 0.
    """
    values = np.asarray(values)
    if np.iscomplexobj(values):
        raise InputError(
            "Complex values cannot be masked as SAR intensity; convert them to intensity (|z|^2) first."
        )
    mask = np.isfinite(values)
    if nodata is not None and not np.isnan(nodata):
        mask &= values != nodata
    if positive:
        with np.errstate(invalid="ignore"):
            mask &= values > 0
    return mask


def linear_to_db(values: np.ndarray, kind: str, noise_floor_db: float = NOISE_FLOOR_DB) -> np.ndarray:
    """Linear intensity/amplitude -> float32 dB.

    Values below ``noise_floor_db`` are set to the floor; invalid pixels
    (0, negative, NaN, +-inf) become NaN.
    """
    factor = _factor(kind)
    values = np.asarray(values)
    valid = valid_mask(values, None, positive=True)
    out = np.full(values.shape, np.nan, dtype=np.float32)
    data = values[valid].astype(np.float64)
    out[valid] = np.maximum(factor * np.log10(data), noise_floor_db).astype(np.float32)
    return out


def db_to_linear(db: np.ndarray, kind: str) -> np.ndarray:
    """dB -> float32 linear intensity/amplitude; exact inverse of :func:`linear_to_db` above the floor.

    NaN and infinite dB values give NaN.
    """
    factor = _factor(kind)
    db = np.asarray(db, dtype=np.float64)
    out = np.full(db.shape, np.nan, dtype=np.float32)
    finite = np.isfinite(db)
    with np.errstate(over="ignore"):
        out[finite] = np.power(10.0, db[finite] / factor).astype(np.float32)
    return out


def minmax_normalise(db: np.ndarray, db_min: float, db_max: float) -> np.ndarray:
    """dB -> network input of a ``minmax`` model: clipped to ``[db_min, db_max]``, mapped to ``[0, 1]``
    (float32; NaN stays NaN). Needs no model metadata (training calls it with its own range)."""
    x = np.asarray(db, dtype=np.float32)
    span = np.float32(db_max - db_min)
    return ((np.clip(x, db_min, db_max) - np.float32(db_min)) / span).astype(np.float32)


def minmax_denormalise(x: np.ndarray, db_min: float, db_max: float) -> np.ndarray:
    """Inverse of :func:`minmax_normalise` (without the clip)."""
    y = np.asarray(x, dtype=np.float32)
    return (y * np.float32(db_max - db_min) + np.float32(db_min)).astype(np.float32)


def normalise(db: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """Model-domain values -> network input, with the model's own parameters (float32).

    ``minmax`` clips to ``[db_min, db_max]`` and maps it to ``[0, 1]`` (:func:`minmax_normalise`);
    ``standard`` subtracts the mean and divides by the standard deviation.
    NaN stays NaN.
    """
    x = np.asarray(db, dtype=np.float32)
    if meta.normalisation is Normalisation.MINMAX:
        assert meta.db_min is not None and meta.db_max is not None  # validated by ModelMetadata
        return minmax_normalise(x, meta.db_min, meta.db_max)
    if meta.normalisation is Normalisation.STANDARD:
        assert meta.mean is not None and meta.std is not None
        return ((x - np.float32(meta.mean)) / np.float32(meta.std)).astype(np.float32)
    return x.copy()


def denormalise(x: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """Network output -> model-domain values (inverse of :func:`normalise`, without the clip)."""
    y = np.asarray(x, dtype=np.float32)
    if meta.normalisation is Normalisation.MINMAX:
        assert meta.db_min is not None and meta.db_max is not None
        return minmax_denormalise(y, meta.db_min, meta.db_max)
    if meta.normalisation is Normalisation.STANDARD:
        assert meta.mean is not None and meta.std is not None
        return (y * np.float32(meta.std) + np.float32(meta.mean)).astype(np.float32)
    return y.copy()


def _model_domain_kind(meta: ModelMetadata, input_kind: str | None) -> str:
    """Resolve what the raster holds: 'intensity', 'amplitude', 'db' or 'none'."""
    if meta.input_transform is InputTransform.NONE:
        return "none"
    if input_kind is None:
        return {
            InputTransform.INTENSITY_TO_DB: "intensity",
            InputTransform.AMPLITUDE_TO_DB: "amplitude",
            InputTransform.DB: "db",
        }[meta.input_transform]
    return check_choice(input_kind, INPUT_KINDS, "input kind")


def to_model_domain(
    raw: np.ndarray, meta: ModelMetadata, nodata: float | None, input_kind: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw raster values -> model domain (dB for SAR models), before normalisation.

    Returns ``(values float32, valid bool)``; invalid pixels are NaN in ``values``.
    ``input_kind`` says what the raster holds ('intensity', 'amplitude' or 'db');
    ``None`` means what the model's ``input_transform`` expects.
    """
    kind = _model_domain_kind(meta, input_kind)
    if kind == "none":
        raw = np.asarray(raw)
        valid = valid_mask(raw, nodata, positive=False)
        values = raw.astype(np.float32)
        values[~valid] = np.nan
        return values, valid
    values, valid = source_db(raw, kind, nodata)
    return np.maximum(values, np.float32(meta.noise_floor_db)), valid


def source_db(raw: np.ndarray, kind: str, nodata: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Raw values of ``kind`` ('intensity', 'amplitude' or 'db') -> float32 dB without any floor.

    Returns ``(values, valid)``; invalid pixels (nodata, NaN, +-inf; 0 and negative for linear
    kinds) are NaN in ``values``.
    """
    raw = np.asarray(raw)
    if kind in LINEAR_KINDS:
        valid = valid_mask(raw, nodata, positive=True)
        return linear_to_db(np.where(valid, raw, np.nan), kind, -np.inf), valid
    check_choice(kind, INPUT_KINDS, "input kind")
    valid = valid_mask(raw, nodata, positive=False)
    values = raw.astype(np.float32)
    values[~valid] = np.nan
    return values, valid


def to_model_input(
    raw: np.ndarray, meta: ModelMetadata, nodata: float | None, input_kind: str | None = None,
    shift_db: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw raster values -> network input: input transform (+ ``shift_db`` after the noise floor) +
    normalisation.

    Returns ``(x float32, valid bool)``; invalid pixels are 0 in ``x`` and
    ``False`` in ``valid``.
    """
    values, valid = to_model_domain(raw, meta, nodata, input_kind)
    x = normalise(values + np.float32(shift_db) if shift_db else values, meta)
    x[~valid] = 0.0
    return x, valid


def range_shift_db(low_db: float, high_db: float, db_min: float, db_max: float) -> float:
    """The dB shift that centres ``[low_db, high_db]`` (a scene's 1st-99th percentiles) in a model's
    range ``[db_min, db_max]``; 0 when it lies inside (to 0.05 dB). Rounded to 0.01 dB."""
    if low_db >= db_min - 0.05 and high_db <= db_max + 0.05:
        return 0.0
    return round(0.5 * (db_min + db_max) - 0.5 * (low_db + high_db), 2)
