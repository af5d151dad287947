"""One range-coded stream of categorical symbols with escapes: the mechanism every entropy model codes with.

A symbol ``v`` is coded with a ``constriction`` ``Categorical`` model over table indices
``0 .. size - 1`` (``v = offset + index``) plus one *escape* index ``size``. Values outside the
table are coded as the escape index; each *group* of symbols (a strip of a factorised table, a slice
of a hyperprior strip) ends with its escaped values, zig-zag coded in two uniform 16-bit halves, so
any int32 value decodes exactly and the decoder knows every value of a group before the next group
(a context model may depend on it). The stream starts with the total escape count (u32), which
bounds a damaged file's claims. Encoder and decoder make the same calls in the same order.

Used by :class:`engine.codec.entropy.StripEncoder` / ``StripDecoder`` (factorised tables) and
:mod:`engine.codec.hyperprior` (side information ``z`` and scale-indexed latents).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CompressedFileError, DependencyError, ModelError

ESCAPE_HEADER = struct.Struct("<I")  # number of escaped symbols
ESCAPE_PAYLOAD_BITS = 32.0
"""Bits an escaped value costs after its escape symbol (two uniform 16-bit halves)."""
MIN_ESCAPE_PROBABILITY = 1e-6
"""Probability reserved for the escape symbol at least (mass outside the table is added to it)."""


def constriction_module() -> Any:
    try:
        import constriction
    except ImportError as exc:  # pragma: no cover - dependency is in requirements/runtime.txt
        raise DependencyError("constriction", "Entropy coding of compressed SAR files") from exc
    return constriction


def coder_probabilities(pmf: Any) -> np.ndarray:
    """The probabilities the coder uses for one pmf: renormalised, plus the escape symbol last."""
    p = np.asarray(pmf, dtype=np.float64)
    escape = max(MIN_ESCAPE_PROBABILITY, 1.0 - float(np.sum(p)))
    return np.concatenate([p / p.sum() * (1.0 - MIN_ESCAPE_PROBABILITY), [escape]])


def categorical(pmf: Any, escape: bool = True) -> Any:
    """The constriction model of one pmf: with its escape symbol (:func:`coder_probabilities`), or over
    exactly the given probabilities (``escape=False``, e.g. a class map)."""
    probabilities = coder_probabilities(pmf) if escape else np.asarray(pmf, dtype=np.float64)
    return constriction_module().stream.model.Categorical(probabilities, perfect=False)


def table_indices(values: np.ndarray, offset: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Table indices of ``values`` (the escape index ``size`` outside) and the mask of escapes."""
    idx = values.astype(np.int64) - offset
    outside = (idx < 0) | (idx >= size)
    return np.where(outside, size, idx), outside


def _zigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def _unzigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.uint64)
    return ((v >> np.uint64(1)).astype(np.int64) ^ -(v & np.uint64(1)).astype(np.int64)).astype(np.int64)


def _damaged_escapes() -> CompressedFileError:
    return CompressedFileError(
        "The entropy-coded payload does not match its entropy model (escape count differs); "
        "the file is damaged or was written for another decoder."
    )


class SymbolEncoder:
    """Write groups of symbols (:meth:`put` ... :meth:`end_group`) into one stream (:meth:`finish`)."""

    def __init__(self) -> None:
        constriction = constriction_module()
        self._encoder = constriction.stream.queue.RangeEncoder()
        self._uniform = constriction.stream.model.Uniform(1 << 16)
        self._pending: list[np.ndarray] = []
        self.escaped = 0

    def put(self, values: np.ndarray, offset: int, size: int, model: Any) -> None:
        """Code integer ``values`` (1-D, any int) with ``model`` over ``offset .. offset + size - 1``."""
        idx, outside = table_indices(values, offset, size)
        if outside.any():
            self._pending.append(values[outside].astype(np.int64))
        if idx.size:
            self._encoder.encode(idx.astype(np.int32), model)

    def put_rows(self, values: np.ndarray, offsets: np.ndarray, sizes: np.ndarray,
                 bounds: Sequence[int] | np.ndarray, models: Sequence[Sequence[Any]]) -> None:
        """:meth:`put` of ``values[r, bounds[k] : bounds[k + 1]]`` with ``offsets[r]``, ``sizes[r]`` and
        ``models[r][k]`` for every row ``r``, then every segment ``k`` - the same stream as those calls in
        that order, with the table lookups done once for the whole array (``[rows, n]``)."""
        v = np.asarray(values, dtype=np.int64)
        size = np.asarray(sizes, dtype=np.int64)[:, None]
        idx = v - np.asarray(offsets, dtype=np.int64)[:, None]
        outside = (idx < 0) | (idx >= size)
        if outside.any():
            self._pending.append(v[outside])  # row-major: the order of the calls
        idx = np.where(outside, size, idx).astype(np.int32)
        spans = [(k, a, b) for k, (a, b) in enumerate(itertools.pairwise(bounds)) if b > a]
        encode = self._encoder.encode
        for r, row_models in enumerate(models):
            row = idx[r]
            for k, a, b in spans:
                encode(row[a:b], row_models[k])

    def put_exact(self, symbols: np.ndarray, model: Any) -> None:
        """Code symbols that always lie in ``model``'s range (no escapes), e.g. a class map."""
        if symbols.size:
            self._encoder.encode(np.asarray(symbols, dtype=np.int32), model)

    def end_group(self) -> None:
        """Code the group's escaped values (in the order they were put)."""
        values = np.concatenate(self._pending) if self._pending else np.zeros(0, np.int64)
        self._pending = []
        if values.size:
            zz = _zigzag(values)
            if np.any(zz >= np.uint64(1 << 32)):
                raise ModelError("A latent value exceeds the int32 range; the encoder output is broken.")
            halves = np.stack([zz & np.uint64(0xFFFF), zz >> np.uint64(16)], axis=1).ravel()
            self._encoder.encode(halves.astype(np.int32), self._uniform)
        self.escaped += int(values.size)

    def finish(self) -> bytes:
        """The coded stream: the escape count (u32) and the range coder's words."""
        words = np.asarray(self._encoder.get_compressed(), dtype="<u4")
        return ESCAPE_HEADER.pack(self.escaped) + words.tobytes()


class SymbolDecoder:
    """Read a :class:`SymbolEncoder` stream with the same calls; ``symbols`` bounds the escape count.

    :meth:`take` returns a group's values with escapes still unresolved; :meth:`end_group` fills them
    in (in place, in every array the group's takes returned).
    """

    def __init__(self, data: bytes, symbols: int) -> None:
        constriction = constriction_module()
        if len(data) < ESCAPE_HEADER.size or (len(data) - ESCAPE_HEADER.size) % 4:
            raise CompressedFileError(
                "The entropy-coded payload has an invalid length; the file is damaged. "
                "Compress the source raster again."
            )
        (self.expected_escapes,) = ESCAPE_HEADER.unpack_from(data)
        if self.expected_escapes > symbols:
            raise CompressedFileError("The entropy-coded payload is damaged (escape count too large).")
        words = np.frombuffer(data, dtype="<u4", offset=ESCAPE_HEADER.size).astype(np.uint32)
        self._decoder = constriction.stream.queue.RangeDecoder(words)
        self._uniform = constriction.stream.model.Uniform(1 << 16)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.escaped = 0

    def take(self, count: int, offset: int, size: int, model: Any) -> np.ndarray:
        """The next ``count`` values (int64) coded with ``model``; the escaped ones are filled in (in this
        array) by :meth:`end_group`."""
        if not count:
            return np.zeros(0, np.int64)
        idx = np.asarray(self._decoder.decode(model, count), dtype=np.int64)
        values = idx + offset
        esc = np.flatnonzero(idx == size)
        if esc.size:
            self._pending.append((values, esc))
        return values

    def take_rows(self, offsets: np.ndarray, sizes: np.ndarray, bounds: Sequence[int] | np.ndarray,
                  models: Sequence[Sequence[Any]]) -> np.ndarray:
        """What :meth:`SymbolEncoder.put_rows` wrote: int64 ``[rows, bounds[-1]]``; the escaped values are
        filled in (in this array) by :meth:`end_group`."""
        n = int(bounds[-1]) if len(bounds) else 0
        idx = np.empty((len(models), n), dtype=np.int64)
        spans = [(k, a, b) for k, (a, b) in enumerate(itertools.pairwise(bounds)) if b > a]
        decode = self._decoder.decode
        for r, row_models in enumerate(models):
            row = idx[r]
            for k, a, b in spans:
                row[a:b] = decode(row_models[k], b - a)
        size = np.asarray(sizes, dtype=np.int64)[:, None]
        values = idx + np.asarray(offsets, dtype=np.int64)[:, None]
        esc = np.flatnonzero(idx == size)
        if esc.size:
            self._pending.append((values.reshape(-1), esc))
        return values

    def take_exact(self, count: int, model: Any) -> np.ndarray:
        """The next ``count`` symbols written by :meth:`SymbolEncoder.put_exact` (int64)."""
        if not count:
            return np.zeros(0, np.int64)
        return np.asarray(self._decoder.decode(model, count), dtype=np.int64)

    def end_group(self) -> None:
        """Decode the group's escaped values into the arrays :meth:`take` returned."""
        total = sum(pos.size for _, pos in self._pending)
        if self.escaped + total > self.expected_escapes:
            raise _damaged_escapes()
        if total:
            halves = np.asarray(self._decoder.decode(self._uniform, 2 * total), dtype=np.uint64)
            halves = halves.reshape(-1, 2)
            values = _unzigzag(halves[:, 0] | (halves[:, 1] << np.uint64(16)))
            start = 0
            for arr, pos in self._pending:
                arr[pos] = values[start : start + pos.size]
                start += pos.size
        self._pending = []
        self.escaped += total

    def finish(self) -> None:
        """Raise :class:`CompressedFileError` unless every announced escape was decoded."""
        if self.escaped != self.expected_escapes:
            raise _damaged_escapes()
