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

A table may also be *classified* (version 2, which also carries the optional
settings of :mod:`engine.codec.rdo`): ``K`` alternative pmf sets
``class_pmfs[k][c]`` (same support as ``pmfs[c]``) and a prior over them,
``class_prior``. The encoder gives every latent cell (all ``C`` channels at one
position) the class that codes it in the fewest bits, codes the class map
first and then each channel's symbols with their cell's class pmf. This is
forward-adaptive side information - a discrete stand-in for a scale
hyperprior: a 16 x 16 block of calm water and one of a city get different
statistics. The class choice is the encoder's alone (the decoder reads it), so
it needs no bit-exact float agreement.

Coding uses :mod:`constriction` (``stream.queue.RangeEncoder``/``RangeDecoder``
with one ``stream.model.Categorical`` per channel (and class), ``perfect=False``).
The models are built from the float64 table only, so encoder and decoder agree
bit for bit on every platform.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import ModelError
from .rangecoding import (
    ESCAPE_PAYLOAD_BITS,
    MIN_ESCAPE_PROBABILITY,
    SymbolDecoder,
    SymbolEncoder,
    categorical,
    coder_probabilities,
    table_indices,
)

TABLE_VERSION = 1
EXTENDED_TABLE_VERSION = 2
"""Tables with classes and/or optimised-quantisation settings."""
READABLE_VERSIONS = (TABLE_VERSION, EXTENDED_TABLE_VERSION)
#: longest pmf accepted per channel (keeps the table and the coder's models small)
MAX_PMF_LENGTH = 4096
__all__ = ["ESCAPE_PAYLOAD_BITS", "MIN_ESCAPE_PROBABILITY", "EntropyModelTable", "StripDecoder",
           "StripEncoder"]


@dataclass(frozen=True)
class EntropyModelTable:
    """Discretised per-channel prior; see the module docstring for the meaning of each field."""

    medians: tuple[float, ...]
    offsets: tuple[int, ...]
    pmfs: tuple[tuple[float, ...], ...]
    class_pmfs: tuple[tuple[tuple[float, ...], ...], ...] = ()
    class_prior: tuple[float, ...] = ()
    distortion_weights: tuple[float, ...] = ()
    rdo_lambda: float = 0.0

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
        problems += self._class_problems()
        weights = np.asarray(self.distortion_weights, dtype=np.float64)
        if weights.size and (weights.shape != (n,) or not np.all(np.isfinite(weights))
                             or np.any(weights < 0)):
            problems.append("distortion_weights must hold one finite, non-negative value per channel")
        lam = self.rdo_lambda
        if not (np.isfinite(lam) and lam >= 0) or (lam > 0 and not weights.size):
            problems.append("rdo_lambda must be finite, >= 0, and come with distortion_weights")
        if problems:
            raise ModelError("Entropy model table is invalid: " + "; ".join(problems) + ".")

    def _class_problems(self) -> list[str]:
        if not self.class_pmfs and not self.class_prior:
            return []
        k = len(self.class_pmfs)
        prior = np.asarray(self.class_prior, dtype=np.float64)
        if k < 2 or prior.shape != (k,):
            return [f"a classified table needs at least 2 classes and one prior probability per class "
                    f"(got {k} classes, {prior.size} probabilities)"]
        problems = []
        if not np.all(np.isfinite(prior)) or np.any(prior <= 0):
            problems.append("class prior probabilities must be finite and positive")
        for i, pmfs in enumerate(self.class_pmfs):
            if len(pmfs) != len(self.pmfs) or any(
                len(p) != len(base) for p, base in zip(pmfs, self.pmfs, strict=False)
            ):
                problems.append(f"class {i} must have one pmf per channel, each as long as the channel's pmf")
                continue
            arr = np.concatenate([np.asarray(p, dtype=np.float64) for p in pmfs])
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                problems.append(f"class {i} pmfs must be finite and non-negative")
        return problems

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

    def with_classes(
        self,
        class_pmfs: Sequence[Sequence[Sequence[float] | np.ndarray]],
        class_prior: Sequence[float] | np.ndarray,
    ) -> EntropyModelTable:
        """This table plus ``K`` class pmf sets (``class_pmfs[k][c]``) and their prior."""
        pm = tuple(
            tuple(tuple(float(p) for p in np.asarray(pmf, dtype=np.float64).ravel()) for pmf in per_class)
            for per_class in class_pmfs
        )
        prior = tuple(float(p) for p in np.asarray(class_prior, dtype=np.float64).ravel())
        return dataclasses.replace(self, class_pmfs=pm, class_prior=prior)

    def with_rdo(
        self, distortion_weights: Sequence[float] | np.ndarray, rdo_lambda: float,
    ) -> EntropyModelTable:
        """This table plus rate-distortion optimised quantisation (see :mod:`engine.codec.rdo`)."""
        weights = tuple(float(w) for w in np.asarray(distortion_weights, dtype=np.float64).ravel())
        return dataclasses.replace(self, distortion_weights=weights, rdo_lambda=float(rdo_lambda))

    def factorised(self) -> EntropyModelTable:
        """Only the per-channel pmfs (no classes, no quantisation settings)."""
        return EntropyModelTable(self.medians, self.offsets, self.pmfs)

    @property
    def channels(self) -> int:
        return len(self.medians)

    @property
    def classes(self) -> int:
        """Number of cell classes (0: a plain factorised table)."""
        return len(self.class_pmfs)

    # --------------------------------------------------------- serialisation
    def to_json(self) -> str:
        """Compact JSON; floats are written with ``repr`` precision so the round trip is exact."""
        extended = bool(self.classes or self.distortion_weights)
        data: dict[str, Any] = {
            "version": EXTENDED_TABLE_VERSION if extended else TABLE_VERSION,
            "medians": list(self.medians),
            "offsets": list(self.offsets),
            "pmfs": [list(p) for p in self.pmfs],
        }
        if self.classes:
            data["class_prior"] = list(self.class_prior)
            data["class_pmfs"] = [[list(p) for p in per_class] for per_class in self.class_pmfs]
        if self.distortion_weights:
            data["distortion_weights"] = list(self.distortion_weights)
            data["rdo_lambda"] = self.rdo_lambda
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EntropyModelTable:
        """Parse :meth:`to_json` output; raise :class:`ModelError` if it is not a valid table."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ModelError(
                f"Entropy model table is not valid JSON ({exc}); re-export the decoder model."
            ) from exc
        if not isinstance(data, dict) or data.get("version") not in READABLE_VERSIONS:
            raise ModelError(
                f"Entropy model table has version {data.get('version') if isinstance(data, dict) else '?'}"
                f", this engine reads versions {', '.join(map(str, READABLE_VERSIONS))}; re-export the model "
                "with this toolbox."
            )
        try:
            table = cls.from_pmfs(data["medians"], data["offsets"], data["pmfs"])
            if data["version"] == EXTENDED_TABLE_VERSION and "class_pmfs" in data:
                table = table.with_classes(data["class_pmfs"], data["class_prior"])
            if data["version"] == EXTENDED_TABLE_VERSION and "distortion_weights" in data:
                table = table.with_rdo(data["distortion_weights"], float(data["rdo_lambda"]))
            return table
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
    @functools.cached_property
    def _coders(self) -> _Coders:
        """The constriction models of this table, built once (the table is immutable)."""
        def models(pmfs: Sequence[Sequence[float]]) -> list[Any]:
            return [categorical(pmf) for pmf in pmfs]

        class_map = None
        if self.classes:
            prior = np.asarray(self.class_prior, dtype=np.float64)
            class_map = categorical(prior / prior.sum(), escape=False)
        return _Coders(models(self.pmfs), [models(per_class) for per_class in self.class_pmfs], class_map)

    @functools.cached_property
    def _ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Every channel's first value and table size (int64 arrays)."""
        return (np.asarray(self.offsets, dtype=np.int64),
                np.asarray([len(p) for p in self.pmfs], dtype=np.int64))

    def channel_coder(self, c: int) -> tuple[int, int, Any]:
        """Channel ``c``'s first value, table size and coder model (the arguments of
        :meth:`engine.codec.rangecoding.SymbolEncoder.put` after the values)."""
        return self.offsets[c], len(self.pmfs[c]), self._coders.channels[c]

    @functools.cached_property
    def _bit_tables(self) -> tuple[np.ndarray, ...]:
        """Per channel, ``-log2`` of the coder probabilities: ``[K, len + 1]`` (``K = 1`` if factorised)."""
        return tuple(
            np.stack([-np.log2(coder_probabilities(pmf))
                      for pmf in ([per_class[c] for per_class in self.class_pmfs] or [self.pmfs[c]])])
            for c in range(self.channels)
        )

    def _symbols(self, c: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Table indices of channel ``c``'s ``values`` (escape index outside) and the mask of escapes."""
        return table_indices(values, self.offsets[c], len(self.pmfs[c]))

    def class_costs(self, q: np.ndarray) -> np.ndarray:
        """Bits of each latent cell of ``q`` (``[C, h, w]``) per class, prior included: ``[K, h*w]``."""
        self._check_channels(q.shape)
        if not self.classes:
            raise ModelError("This entropy table has no classes.")
        n = q.shape[1] * q.shape[2]
        prior = np.asarray(self.class_prior, np.float64)
        costs = np.tile(-np.log2(prior / prior.sum())[:, None], (1, n))
        for c in range(self.channels):
            idx, outside = self._symbols(c, q[c].ravel())
            costs += self._bit_tables[c][:, idx] + ESCAPE_PAYLOAD_BITS * outside[None, :]
        return costs

    def symbol_bits(self, c: int, values: np.ndarray, cells: np.ndarray | None) -> np.ndarray:
        """Bits of integer ``values`` of channel ``c`` under their cells' classes (``cells``, same shape).

        ``cells`` is ignored (may be ``None``) for a factorised table. Escapes include their payload.
        """
        idx, outside = self._symbols(c, values)
        table = self._bit_tables[c]
        rows = np.zeros_like(idx) if cells is None or not self.classes else cells
        return table[rows, idx] + ESCAPE_PAYLOAD_BITS * outside

    def assign_classes(self, q: np.ndarray) -> np.ndarray:
        """The class of each latent cell (``[h*w]`` int32): the one that codes the cell in fewest bits."""
        return np.argmin(self.class_costs(q), axis=0).astype(np.int32)

    def encode(self, q: np.ndarray) -> bytes:
        """Range-code integer latents ``q`` (int ``[C, h, w]``, any values) into bytes (one strip)."""
        self._check_channels(q.shape)
        stream = StripEncoder(self)
        stream.add(q)
        return stream.finish()

    def decode(self, data: bytes, shape: Sequence[int]) -> np.ndarray:
        """Inverse of :meth:`encode` for latents of ``shape`` ``[C, h, w]`` -> int32 array."""
        shape = tuple(int(s) for s in shape)
        self._check_channels(shape)
        stream = StripDecoder(self, data, shape[0] * shape[1] * shape[2], shape[2])
        q = stream.next(shape[1])
        stream.finish()
        return q


class _Coders(NamedTuple):
    """A table's constriction models: per channel, per class and channel, and the class map's."""

    channels: list[Any]
    classes: list[list[Any]]
    class_map: Any | None


def _models_by_channel(class_models: list[list[Any]]) -> list[list[Any]]:
    """``[channel][class]`` from a table's ``[class][channel]`` constriction models."""
    return [list(per_channel) for per_channel in zip(*class_models, strict=True)] if class_models else []


def _class_order(cells: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The cells grouped by class, raster order inside a class (a stable sort), and the class bounds in
    that order (``classes + 1`` values)."""
    order = np.argsort(cells, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(cells, minlength=classes))])
    return order, bounds


class StripEncoder:
    """Range-code a latent grid strip by strip (rows top to bottom) into one stream.

    Per strip: the class map of its cells (classified tables), then every channel's symbols
    (class by class), then the strip's escaped values (:mod:`.rangecoding`). One strip holding the whole
    grid gives exactly :meth:`EntropyModelTable.encode`'s bytes. Memory holds one strip and the
    compressed words.
    """

    def __init__(self, table: EntropyModelTable) -> None:
        self.table = table
        self._stream = SymbolEncoder()
        self._models, self._class_models, self._class_map = table._coders
        self._by_channel = _models_by_channel(self._class_models)

    @property
    def escaped(self) -> int:
        return self._stream.escaped

    def add(self, q: np.ndarray) -> None:
        """Code the next strip ``q`` (int ``[C, rows, w]``)."""
        table = self.table
        table._check_channels(q.shape)
        flat = np.asarray(q).reshape(table.channels, -1)
        offsets, sizes = table._ranges
        if self._class_map is not None:
            cells = table.assign_classes(np.asarray(q))
            self._stream.put_exact(cells, self._class_map)
            order, bounds = _class_order(cells, table.classes)
            # every channel, class by class (cells of a class in raster order): one table lookup
            self._stream.put_rows(flat[:, order], offsets, sizes, bounds, self._by_channel)
        else:
            self._stream.put_rows(flat, offsets, sizes, (0, flat.shape[1]), [[m] for m in self._models])
        self._stream.end_group()

    def finish(self) -> bytes:
        """The coded stream: the escape count (u32) and the range coder's words."""
        return self._stream.finish()


class StripDecoder:
    """Decode a :class:`StripEncoder` stream strip by strip (the caller knows each strip's rows).

    ``symbols`` is the number of latent values in the whole grid (bounds the escape count) and
    ``width`` the grid width. Call :meth:`finish` after the last strip: it checks the escape count.
    """

    def __init__(self, table: EntropyModelTable, data: bytes, symbols: int, width: int) -> None:
        self.table, self.width = table, width
        self._stream = SymbolDecoder(data, symbols)
        self._models, self._class_models, self._class_map = table._coders
        self._by_channel = _models_by_channel(self._class_models)

    @property
    def escaped(self) -> int:
        return self._stream.escaped

    def next(self, rows: int) -> np.ndarray:
        """The next strip of ``rows`` latent rows: int32 ``[C, rows, width]``."""
        table, stream = self.table, self._stream
        n = rows * self.width
        offsets, sizes = table._ranges
        if self._class_map is not None:
            cells = stream.take_exact(n, self._class_map)
            order, bounds = _class_order(cells, table.classes)
            values = stream.take_rows(offsets, sizes, bounds, self._by_channel)
            stream.end_group()
            out = np.empty((table.channels, n), dtype=np.int32)
            out[:, order] = values
        else:
            values = stream.take_rows(offsets, sizes, (0, n), [[m] for m in self._models])
            stream.end_group()
            out = values.astype(np.int32)
        return out.reshape(table.channels, rows, self.width)

    def finish(self) -> None:
        """Raise :class:`CompressedFileError` unless every announced escape was decoded."""
        self._stream.finish()
