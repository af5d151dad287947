"""Per-channel discretised factorised prior and range coding of integer latents.

The table is the learned factorised prior of a compression model, discretised
per latent channel ``c``:

* ``medians[c]`` (``m_c``): latents are quantised as ``q = round(y - m_c)`` and
  dequantised as ``y_hat = q + m_c``;
* ``offsets[c]``: the integer value of ``q`` described by the first pmf entry;
* ``pmfs[c]``: probabilities of ``q = offsets[c] + i`` for ``i = 0 .. len - 1``.

Symbols outside a channel's table are coded losslessly with an *escape*: an
extra table symbol (index ``len(pmf)``) followed, at the end of the stream, by
the zig-zag coded value in two uniform 16-bit halves. Any int32 latent
therefore decodes exactly; escapes only cost bits.

Coding uses :mod:`constriction` (``stream.queue.RangeEncoder``/``RangeDecoder``
with one ``stream.model.Categorical`` per channel, ``perfect=False``). The
models are built from the float64 table only, so encoder and decoder agree
bit for bit on every platform.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CompressedFileError, DependencyError, ModelError

TABLE_VERSION = 1
#: probability reserved for the escape symbol at least (mass outside the table is added to it)
MIN_ESCAPE_PROBABILITY = 1e-6
#: longest pmf accepted per channel (keeps the table and the coder's models small)
MAX_PMF_LENGTH = 4096
_ESCAPE_HEADER = struct.Struct("<I")  # number of escaped symbols


def _constriction() -> Any:
    try:
        import constriction
    except ImportError as exc:  # pragma: no cover - dependency is in requirements/runtime.txt
        raise DependencyError("constriction", "Entropy coding of compressed SAR files") from exc
    return constriction


def _zigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def _unzigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.uint64)
    return ((v >> np.uint64(1)).astype(np.int64) ^ -(v & np.uint64(1)).astype(np.int64)).astype(np.int64)


@dataclass(frozen=True)
class EntropyModelTable:
    """Discretised per-channel prior; see the module docstring for the meaning of each field."""

    medians: tuple[float, ...]
    offsets: tuple[int, ...]
    pmfs: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        n = len(self.medians)
        problems = []
        if n == 0:
            problems.append("it has no channels")
        if len(self.offsets) != n or len(self.pmfs) != n:
            problems.append(
                f"medians ({n}), offsets ({len(self.offsets)}) and pmfs ({len(self.pmfs)}) "
                "must have one entry per latent channel"
            )
        for c, pmf in enumerate(self.pmfs):
            arr = np.asarray(pmf, dtype=np.float64)
            if arr.ndim != 1 or not 1 <= arr.size <= MAX_PMF_LENGTH:
                problems.append(f"pmf of channel {c} must hold 1..{MAX_PMF_LENGTH} probabilities")
            elif not np.all(np.isfinite(arr)) or np.any(arr < 0) or arr.sum() <= 0:
                problems.append(f"pmf of channel {c} must be finite, non-negative and not all zero")
        if not all(np.isfinite(m) for m in self.medians):
            problems.append("medians must be finite")
        if problems:
            raise ModelError("Entropy model table is invalid: " + "; ".join(problems) + ".")

    # ----------------------------------------------------------- construction
    @classmethod
    def from_pmfs(
        cls,
        medians: Sequence[float] | np.ndarray,
        offsets: Sequence[int] | np.ndarray,
        pmfs: Sequence[Sequence[float] | np.ndarray],
    ) -> EntropyModelTable:
        """Build a table from per-channel medians, integer offsets and pmfs (any array-likes)."""
        med = tuple(float(m) for m in np.asarray(medians, dtype=np.float64).ravel())
        off = tuple(int(o) for o in np.asarray(offsets).ravel())
        pm = tuple(tuple(float(p) for p in np.asarray(pmf, dtype=np.float64).ravel()) for pmf in pmfs)
        return cls(med, off, pm)

    @property
    def channels(self) -> int:
        return len(self.medians)

    # --------------------------------------------------------- serialisation
    def to_json(self) -> str:
        """Compact JSON; floats are written with ``repr`` precision so the round trip is exact."""
        return json.dumps(
            {
                "version": TABLE_VERSION,
                "medians": list(self.medians),
                "offsets": list(self.offsets),
                "pmfs": [list(p) for p in self.pmfs],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> EntropyModelTable:
        """Parse :meth:`to_json` output; raise :class:`ModelError` if it is not a valid table."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ModelError(
                f"Entropy model table is not valid JSON ({exc}); re-export the decoder model."
            ) from exc
        if not isinstance(data, dict) or data.get("version") != TABLE_VERSION:
            raise ModelError(
                f"Entropy model table has version {data.get('version') if isinstance(data, dict) else '?'}"
                f", this engine reads version {TABLE_VERSION}; re-export the model with this toolbox."
            )
        try:
            return cls.from_pmfs(data["medians"], data["offsets"], data["pmfs"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"Entropy model table is malformed ({exc}); re-export the model.") from exc

    def sha256(self) -> str:
        """SHA-256 of the canonical JSON (stored in compressed files to detect a table mismatch)."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    # ------------------------------------------------------------ quantising
    def medians_array(self) -> np.ndarray:
        return np.asarray(self.medians, dtype=np.float32)

    def quantise(self, y: np.ndarray) -> np.ndarray:
        """``q = round(y - m_c)`` for latents ``y`` of shape ``[C, h, w]`` -> int32."""
        self._check_channels(y.shape)
        centred = y.astype(np.float32) - self.medians_array()[:, None, None]
        return np.rint(centred).astype(np.int32)

    def dequantise(self, q: np.ndarray) -> np.ndarray:
        """``y_hat = q + m_c`` as float32 ``[C, h, w]``."""
        self._check_channels(q.shape)
        return (q.astype(np.float32) + self.medians_array()[:, None, None]).astype(np.float32)

    def _check_channels(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 3 or shape[0] != self.channels:
            raise ModelError(
                f"Latents have shape {tuple(shape)} but the entropy model expects "
                f"[{self.channels}, h, w]; encoder and entropy table do not belong together."
            )

    # -------------------------------------------------------------- coding
    def _models(self) -> list[Any]:
        categorical = _constriction().stream.model.Categorical
        models = []
        for pmf in self.pmfs:
            p = np.asarray(pmf, dtype=np.float64)
            p = p / p.sum()
            escape = max(MIN_ESCAPE_PROBABILITY, 1.0 - float(np.sum(pmf)))
            probs = np.concatenate([p * (1.0 - MIN_ESCAPE_PROBABILITY), [escape]])
            models.append(categorical(probs, perfect=False))
        return models

    def encode(self, q: np.ndarray) -> bytes:
        """Range-code integer latents ``q`` (int ``[C, h, w]``, any values) into bytes."""
        self._check_channels(q.shape)
        constriction = _constriction()
        q = np.asarray(q)
        encoder = constriction.stream.queue.RangeEncoder()
        escaped: list[np.ndarray] = []
        for c, model in enumerate(self._models()):  # one channel at a time: int64 copies stay small
            size = len(self.pmfs[c])
            values = q[c].ravel().astype(np.int64)
            idx = values - self.offsets[c]
            outside = (idx < 0) | (idx >= size)
            if outside.any():
                escaped.append(values[outside])
                idx = np.where(outside, size, idx)
            if idx.size:
                encoder.encode(idx.astype(np.int32), model)
        values = np.concatenate(escaped) if escaped else np.zeros(0, np.int64)
        if values.size:
            zz = _zigzag(values)
            if np.any(zz >= np.uint64(1 << 32)):
                raise ModelError("A latent value exceeds the int32 range; the encoder output is broken.")
            uniform = constriction.stream.model.Uniform(1 << 16)
            halves = np.stack([zz & np.uint64(0xFFFF), zz >> np.uint64(16)], axis=1).ravel()
            encoder.encode(halves.astype(np.int32), uniform)
        words = np.asarray(encoder.get_compressed(), dtype="<u4")
        return _ESCAPE_HEADER.pack(int(values.size)) + words.tobytes()

    def decode(self, data: bytes, shape: Sequence[int]) -> np.ndarray:
        """Inverse of :meth:`encode` for latents of ``shape`` ``[C, h, w]`` -> int32 array."""
        shape = tuple(int(s) for s in shape)
        self._check_channels(shape)
        constriction = _constriction()
        if len(data) < _ESCAPE_HEADER.size or (len(data) - _ESCAPE_HEADER.size) % 4:
            raise CompressedFileError(
                "The entropy-coded payload has an invalid length; the file is damaged. "
                "Compress the source raster again."
            )
        (n_escaped,) = _ESCAPE_HEADER.unpack_from(data)
        n = shape[1] * shape[2]
        if n_escaped > n * shape[0]:
            raise CompressedFileError("The entropy-coded payload is damaged (escape count too large).")
        words = np.frombuffer(data, dtype="<u4", offset=_ESCAPE_HEADER.size).astype(np.uint32)
        decoder = constriction.stream.queue.RangeDecoder(words)
        out = np.empty((shape[0], n), dtype=np.int32)
        escape_positions: list[tuple[int, np.ndarray]] = []
        for c, model in enumerate(self._models()):
            idx = np.asarray(decoder.decode(model, n), dtype=np.int64) if n else np.zeros(0, np.int64)
            size = len(self.pmfs[c])
            out[c] = (idx + self.offsets[c]).astype(np.int32)
            esc = np.flatnonzero(idx == size)
            if esc.size:
                escape_positions.append((c, esc))
        total = sum(pos.size for _, pos in escape_positions)
        if total != n_escaped:
            raise CompressedFileError(
                "The entropy-coded payload does not match its entropy model (escape count differs); "
                "the file is damaged or was written for another decoder."
            )
        if total:
            uniform = constriction.stream.model.Uniform(1 << 16)
            halves = np.asarray(decoder.decode(uniform, 2 * total), dtype=np.uint64).reshape(-1, 2)
            values = _unzigzag(halves[:, 0] | (halves[:, 1] << np.uint64(16)))
            start = 0
            for c, pos in escape_positions:
                out[c, pos] = values[start : start + pos.size].astype(np.int32)
                start += pos.size
        return out.reshape(shape)
