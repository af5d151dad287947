"""Pixels outside the codec model's dB range: bright ones kept to within a quarter dB, dark ones reported.

The learned codec sees values clipped to its model range ``[db_min, db_max]`` (after the scene's
``shift_db``). Without more, a ship or a corner reflector at +30 dB comes back at ``db_max``: tens
of dB wrong, silently. So the encoder also writes a sparse *exception layer*:

* **Bright pixels** (model-domain value above ``db_max``): their raster-order positions and their
  values, quantised in dB as ``level = round((v - db_max) / step)`` with ``step =``
  :data:`STEP_DB` (error at most ``step / 2``). The decoder writes ``db_max + level * step`` over
  the decoded image after the restoration filter.
* **Dark pixels** (below ``db_min``, or below the model's noise floor, which the input transform
  already clamps): not coded. With a calibrated scene (no shift) that is below -35 dB, under the
  noise-equivalent sigma0 of current sensors, so their exact value is noise; with a shift the
  range still spans the scene's 1st-99th percentiles with room to spare. They are counted and the
  count goes to the run log and to :class:`RangeReport`, never silently.

Coding (one section of the ``.sarz`` file, :mod:`.fileformat` version 4): position gaps
(``index - previous index - 1``, so adjacent pixels cost gap 0) and levels are each split into a
*class* (the value itself below :data:`DIRECT`, else ``DIRECT + bit length - 5``) and the bits
below the leading one. Classes are range-coded with :mod:`constriction` under a categorical model
whose counts (scaled to ``u16``) the section carries; the remaining bits are coded uniformly. An
empty section means no bright pixel.

Section layout (little-endian)::

    count      u64        bright pixels
    step_db    f64        quantisation step in dB
    base_db    f64        model-domain dB of level 0 (the model's db_max)
    gap pmf    u8 n + n x u16   scaled class counts of the gaps
    level pmf  u8 n + n x u16   scaled class counts of the levels
    words      u32 ...    the range coder's words
"""

from __future__ import annotations

import functools
import logging
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CompressedFileError
from ..metadata import ModelMetadata
from ..preprocess import source_db
from ..run import Run
from ..tiling import Window
from .rangecoding import constriction_module as _constriction

logger = logging.getLogger(__name__)

STEP_DB = 0.5
"""Quantisation step of the bright pixels' dB values: their error is at most 0.25 dB."""
DIRECT = 16
"""Values below this are their own class; larger ones are classed by bit length."""
MAX_CLASS = DIRECT + 64 - 5
"""Largest class (a 64-bit value)."""
SCAN_ROWS = 256
"""Rows read per step when the encoder scans the band for pixels outside the model's range."""
_HEAD = struct.Struct("<Qdd")
_CHUNK_BITS = 16


@dataclass(frozen=True)
class BrightPixels:
    """The exception layer: raster-order pixel indices (increasing) and their quantised dB levels."""

    positions: np.ndarray
    levels: np.ndarray
    step_db: float = STEP_DB
    base_db: float = 0.0

    @property
    def count(self) -> int:
        return int(self.positions.size)

    @functools.cached_property
    def values_db(self) -> np.ndarray:
        """Model-domain dB of every bright pixel (float32)."""
        return (self.base_db + self.levels.astype(np.float64) * self.step_db).astype(np.float32)

    def restore(self, model_db: np.ndarray, window: Window, width: int) -> None:
        """Write the bright pixels that fall in ``window`` (of a raster ``width`` wide) into ``model_db``."""
        if not self.count:
            return
        lo = np.searchsorted(self.positions, window.row_off * width)
        hi = np.searchsorted(self.positions, window.row_end * width)
        if lo == hi:
            return
        pos = self.positions[lo:hi]
        rows, cols = np.divmod(pos, width)
        inside = (cols >= window.col_off) & (cols < window.col_off + window.width)
        values = self.values_db[lo:hi]
        model_db[rows[inside] - window.row_off, cols[inside] - window.col_off] = values[inside]

    # ------------------------------------------------------------ coding
    def to_bytes(self) -> bytes:
        """The file section (empty when there is no bright pixel)."""
        if not self.count:
            return b""
        gaps = np.diff(self.positions, prepend=-1) - 1
        gap_classes, gap_bits = _classes(gaps)
        level_classes, level_bits = _classes(self.levels)
        gap_pmf, level_pmf = _pmf_counts(gap_classes), _pmf_counts(level_classes)
        coder = _constriction().stream.queue.RangeEncoder()
        coder.encode(gap_classes.astype(np.int32), _model(gap_pmf))
        coder.encode(level_classes.astype(np.int32), _model(level_pmf))
        for values, bits in ((gaps, gap_bits), (self.levels, level_bits)):
            _encode_low_bits(coder, values, bits)
        words = np.asarray(coder.get_compressed(), dtype="<u4").tobytes()
        return (_HEAD.pack(self.count, self.step_db, self.base_db) + _pack_pmf(gap_pmf)
                + _pack_pmf(level_pmf) + words)

    @classmethod
    def from_bytes(cls, data: bytes, pixels: int) -> BrightPixels:
        """Parse a section written by :meth:`to_bytes` for a raster of ``pixels`` pixels."""
        if not data:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))
        try:
            return _parse(data, pixels)
        except (ValueError, RuntimeError, struct.error, IndexError) as exc:
            raise _damaged(str(exc)) from exc


def _damaged(detail: str) -> CompressedFileError:
    return CompressedFileError(
        f"The compressed file's bright-pixel section is damaged ({detail}); use an intact copy or "
        "compress the source raster again."
    )


def _parse(data: bytes, pixels: int) -> BrightPixels:
    count, step, base = _HEAD.unpack_from(data)
    if not 0 < count <= pixels or not 0.0 < step <= 1.0 or not np.isfinite(base):
        raise _damaged(f"{count} pixels of {pixels}, step {step} dB")
    pos = _HEAD.size
    gap_pmf, pos = _unpack_pmf(data, pos)
    level_pmf, pos = _unpack_pmf(data, pos)
    if (len(data) - pos) % 4:
        raise _damaged("its coded words have an invalid length")
    words = np.frombuffer(data, dtype="<u4", offset=pos).astype(np.uint32)
    decoder = _constriction().stream.queue.RangeDecoder(words)
    gap_classes = np.asarray(decoder.decode(_model(gap_pmf), count), dtype=np.int64)
    level_classes = np.asarray(decoder.decode(_model(level_pmf), count), dtype=np.int64)
    gaps = _decode_low_bits(decoder, gap_classes)
    levels = _decode_low_bits(decoder, level_classes)
    if np.any(gaps < 0) or np.any(levels < 0) or int(gaps.sum()) + count > pixels:
        raise _damaged("positions beyond the raster")
    positions = np.cumsum(gaps + 1) - 1
    return BrightPixels(positions.astype(np.int64), levels, float(step), float(base))


def _classes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class of each non-negative value and the number of low bits sent after it."""
    v = np.asarray(values, dtype=np.int64)
    length = np.zeros(v.shape, np.int64)
    big = v >= DIRECT
    length[big] = np.floor(np.log2(v[big].astype(np.float64))).astype(np.int64) + 1
    # float log2 may be off by one next to powers of two: fix it exactly
    length[big] += (v[big] >> length[big]) > 0
    length[big] -= (v[big] >> (length[big] - 1)) == 0
    classes = np.where(big, DIRECT + length - 5, v)
    return classes, np.where(big, length - 1, 0)


def _pmf_counts(classes: np.ndarray) -> np.ndarray:
    """Counts of classes ``0 .. max``, scaled into u16 (a used class keeps a count of at least 1)."""
    counts = np.bincount(classes, minlength=1).astype(np.float64)
    scaled = np.where(counts > 0, np.maximum(1.0, np.round(counts * 65535.0 / counts.max())), 0.0)
    return scaled.astype(np.int64)


def _model(counts: np.ndarray) -> Any:
    """The categorical model of scaled class counts (float64 from integers: identical everywhere)."""
    p = counts.astype(np.float64)
    return _constriction().stream.model.Categorical(p / p.sum(), perfect=False)


def _pack_pmf(counts: np.ndarray) -> bytes:
    return struct.pack("<B", counts.size) + counts.astype("<u2").tobytes()


def _unpack_pmf(data: bytes, pos: int) -> tuple[np.ndarray, int]:
    (n,) = struct.unpack_from("<B", data, pos)
    pos += 1
    if not 0 < n <= MAX_CLASS + 1 or len(data) < pos + 2 * n:
        raise _damaged("invalid class table")
    counts = np.frombuffer(data, dtype="<u2", count=n, offset=pos).astype(np.int64)
    if counts.sum() == 0:
        raise _damaged("empty class table")
    return counts, pos + 2 * n


def _uniform(bits: int) -> Any:
    return _constriction().stream.model.Uniform(1 << bits)


def _chunks(bits: int) -> list[tuple[int, int]]:
    """(shift, width) of the uniform chunks that carry ``bits`` low bits, lowest first."""
    return [(s, min(_CHUNK_BITS, bits - s)) for s in range(0, bits, _CHUNK_BITS)]


def _encode_low_bits(coder: Any, values: np.ndarray, bits: np.ndarray) -> None:
    """The bits below each value's leading one, grouped by their number (ascending)."""
    v = np.asarray(values, dtype=np.int64)
    for b in np.unique(bits[bits > 0]):
        group = v[bits == b]
        for shift, width in _chunks(int(b)):
            chunk = (group >> shift) & ((1 << width) - 1)
            coder.encode(chunk.astype(np.int32), _uniform(width))


def _decode_low_bits(decoder: Any, classes: np.ndarray) -> np.ndarray:
    """Values from their classes and the low bits that follow (inverse of :func:`_encode_low_bits`)."""
    if np.any(classes > MAX_CLASS):
        raise _damaged("class out of range")
    big = classes >= DIRECT
    bits = np.where(big, classes - DIRECT + 4, 0)
    values = np.where(big, np.left_shift(1, bits, dtype=np.int64), classes).astype(np.int64)
    for b in np.unique(bits[bits > 0]):
        where = bits == b
        low = np.zeros(int(where.sum()), np.int64)
        for shift, width in _chunks(int(b)):
            chunk = np.asarray(decoder.decode(_uniform(width), low.size), dtype=np.int64)
            low |= chunk << shift
        values[where] += low
    return values


# ---------------------------------------------------------------- encoder side
@dataclass(frozen=True)
class RangeReport:
    """Valid pixels outside the model's range: the bright layer and the count of dark pixels."""

    bright: BrightPixels
    dark: int
    valid: int
    dark_floor_db: float
    """Source dB below which pixels are dark: coded at this floor (the model's, shift removed)."""
    bright_above_db: float
    """Source dB above which pixels are bright: coded apart (the model's top, shift removed)."""
    brightest_db: float
    """Source dB of the brightest pixel (NaN when none is above the range)."""


def scan_range(src: Any, band: int, meta: ModelMetadata, nodata: float | None, input_kind: str,
               shift_db: float, run: Run) -> RangeReport:
    """One streaming pass over the band (progress and cancel through ``run``): the bright exception layer
    and the dark count."""
    from ..raster_io import read_window

    assert meta.db_min is not None and meta.db_max is not None  # codec models are min-max normalised
    top_db = float(meta.db_max)
    bottom_db = max(float(meta.db_min), meta.noise_floor_db + shift_db)
    positions: list[np.ndarray] = []
    levels: list[np.ndarray] = []
    dark = valid_total = 0
    brightest = -np.inf
    for top in run.steps(src.height, SCAN_ROWS, "Compression"):
        raw = read_window(src, band, Window(top, 0, min(SCAN_ROWS, src.height - top), src.width),
                          fill=np.nan, dtype=np.float64)
        db, valid = source_db(raw, input_kind, nodata)
        v = db.astype(np.float64) + shift_db
        valid_total += int(valid.sum())
        dark += int(np.count_nonzero(valid & (v < bottom_db)))
        rows, cols = np.nonzero(valid & (v > top_db))
        if rows.size:
            values = v[rows, cols]
            brightest = max(brightest, float(values.max()))
            positions.append((rows + top).astype(np.int64) * src.width + cols)
            levels.append(np.round((values - top_db) / STEP_DB).astype(np.int64))
    bright = BrightPixels(np.concatenate(positions) if positions else np.zeros(0, np.int64),
                          np.concatenate(levels) if levels else np.zeros(0, np.int64), STEP_DB, top_db)
    return RangeReport(bright, dark, valid_total, bottom_db - shift_db, top_db - shift_db,
                       brightest - shift_db if bright.count else float("nan"))


def report_range(result: RangeReport, section_bytes: int, pixels: int, run: Run) -> None:
    """Say in the run log what happens to the pixels outside the model's range."""
    share = 100.0 / max(result.valid, 1)
    if result.bright.count:
        run.say(
            f"{result.bright.count} bright pixels ({share * result.bright.count:.3f} % of the valid ones, "
            f"up to {result.brightest_db:.1f} dB) lie above the model's range (> {result.bright_above_db:.1f}"
            f" dB): coded apart to within {result.bright.step_db / 2:.2f} dB, {section_bytes} bytes "
            f"({8.0 * section_bytes / pixels:.4f} bits per pixel)", logger=logger)
    else:
        run.say(f"No pixel above the model's range (> {result.bright_above_db:.1f} dB)", logger=logger)
    if result.dark:
        message = (f"{result.dark} dark pixels ({share * result.dark:.3f} % of the valid ones) lie below "
                   f"the model's floor of {result.dark_floor_db:.1f} dB and are coded at that floor")
        if share * result.dark > 1.0:
            run.warn(message + "; if those dark values matter, compress with a dB shift that brings them "
                     "into the range", logger=logger)
        else:
            run.say(message, logger=logger)
