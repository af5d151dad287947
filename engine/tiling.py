"""Tile plans, window arithmetic and blending weights: pure functions, no I/O.

A raster of ``height x width`` pixels is covered by a regular grid of square
tiles of side ``tile_size`` whose origins are ``stride = tile_size - overlap``
apart, starting at pixel (0, 0). The last tiles of a row or column may extend
beyond the raster: their *read* window is read boundless (padded).

Each tile contributes to the output through blending weights that taper only
across the ``overlap`` shared with a neighbour. Neighbouring ramps are
complementary (``sin^2 + cos^2 = 1`` for ``cosine``, ``t + (1 - t)`` for
``feather``), and sides without a neighbour are not tapered, so the weights of
all tiles sum to exactly one at every pixel of the raster. ``none`` gives each
tile its *core* window only (a partition of the raster).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError, check_choice


@dataclass(frozen=True, order=True)
class Window:
    """A rectangle of pixels: offsets of its top-left corner, height and width."""

    row_off: int
    col_off: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height < 0 or self.width < 0:
            raise ValueError(f"Window height and width must be >= 0, got {self.height} x {self.width}.")

    @property
    def row_end(self) -> int:
        return self.row_off + self.height

    @property
    def col_end(self) -> int:
        return self.col_off + self.width

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def is_empty(self) -> bool:
        return self.height == 0 or self.width == 0

    def intersection(self, other: Window) -> Window:
        """The overlap of two windows (empty, anchored at ``self``'s clipped origin, if none)."""
        r0, c0 = max(self.row_off, other.row_off), max(self.col_off, other.col_off)
        r1, c1 = min(self.row_end, other.row_end), min(self.col_end, other.col_end)
        return Window(r0, c0, max(0, r1 - r0), max(0, c1 - c0))

    def relative_to(self, outer: Window) -> Window:
        """This window in the pixel coordinates of ``outer``'s top-left corner."""
        return Window(self.row_off - outer.row_off, self.col_off - outer.col_off, self.height, self.width)

    def slices(self) -> tuple[slice, slice]:
        """``(row slice, column slice)`` for indexing an array (offsets must be >= 0)."""
        return slice(self.row_off, self.row_end), slice(self.col_off, self.col_end)

    def to_ranges(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((row_start, row_stop), (col_start, col_stop))`` as rasterio accepts."""
        return (self.row_off, self.row_end), (self.col_off, self.col_end)

    def scaled(self, factor: int) -> Window:
        """This window on a grid ``factor`` times finer (e.g. latent cells -> pixels)."""
        return Window(self.row_off * factor, self.col_off * factor, self.height * factor, self.width * factor)

    def expanded(self, margin: int) -> Window:
        """This window grown by ``margin`` pixels on every side (shrunk for a negative margin)."""
        return Window(self.row_off - margin, self.col_off - margin, self.height + 2 * margin,
                      self.width + 2 * margin)


def raster_window(height: int, width: int) -> Window:
    """The window covering a whole raster."""
    return Window(0, 0, height, width)


def pad_to_window(inside_data: np.ndarray, inside: Window, window: Window, fill: float = np.nan,
                  mirror: bool = False, dtype: Any = None) -> np.ndarray:
    """Boundless read, second half: the pixels of ``inside`` (the part of ``window`` that lies in the
    raster, ``(..., h, w)``) placed in a ``window``-sized array.

    Outside pixels are ``fill``, or with ``mirror`` the inside mirrored at its edges (``numpy.pad``
    ``symmetric``). ``dtype``: of the result (default: the data's).
    """
    lead = inside_data.shape[:-2]
    dtype = inside_data.dtype if dtype is None else dtype
    rel = inside.relative_to(window)
    if not mirror:
        out = np.full((*lead, window.height, window.width), fill, dtype=dtype)
        if not inside.is_empty:
            out[(..., *rel.slices())] = inside_data
        return out
    if inside.is_empty:
        raise ValueError(f"Cannot mirror into {window}: it does not overlap the raster.")
    data = np.asarray(inside_data, dtype=dtype)
    pads = ((rel.row_off, window.row_end - inside.row_end), (rel.col_off, window.col_end - inside.col_end))
    if any(any(p) for p in pads):
        data = np.pad(data, ((0, 0),) * len(lead) + pads, mode="symmetric")
    return data


def read_array(data: np.ndarray, window: Window, fill: float = np.nan, mirror: bool = False,
               dtype: Any = None) -> np.ndarray:
    """Boundless read of ``window`` from an in-memory ``(..., height, width)`` array (see
    :func:`pad_to_window`)."""
    inside = window.intersection(raster_window(*data.shape[-2:]))
    return pad_to_window(data[(..., *inside.slices())], inside, window, fill, mirror, dtype)


def band_list(band: int | Sequence[int] | None) -> list[int]:
    """1-based band indices as a list: one band, a sequence of bands, or none (``[]``)."""
    if band is None:
        return []
    if isinstance(band, int | np.integer):
        return [int(band)]
    return [int(b) for b in band]


@dataclass(frozen=True)
class Tile:
    """One tile of a plan.

    Attributes:
        read: the ``tile_size x tile_size`` window to read (may extend beyond the raster).
        core: the part of the raster this tile alone is responsible for (the cores partition it).
        index: ``(tile row, tile column)`` in the grid.
        taper: whether the weights taper at the (top, bottom, left, right) side,
            i.e. whether a neighbouring tile shares that overlap.
    """

    read: Window
    core: Window
    index: tuple[int, int] = (0, 0)
    taper: tuple[bool, bool, bool, bool] = (False, False, False, False)


def check_tiling(tile_size: int, overlap: int) -> None:
    """Raise :class:`InputError` unless ``tile_size >= 1`` and ``0 <= overlap < tile_size``."""
    if tile_size < 1:
        raise InputError(f"Tile size must be at least 1 pixel, got {tile_size}; choose a larger tile size.")
    if not 0 <= overlap < tile_size:
        raise InputError(
            f"Tile overlap must be >= 0 and smaller than the tile size ({tile_size}), got {overlap}; "
            "choose a smaller overlap."
        )


def tile_count(size: int, tile_size: int, overlap: int) -> int:
    """Number of tiles along one axis of ``size`` pixels (at least one)."""
    check_tiling(tile_size, overlap)
    stride = tile_size - overlap
    return max(1, math.ceil((size - overlap) / stride))


def _axis_spans(size: int, tile_size: int, overlap: int) -> list[tuple[int, int, int]]:
    """Per tile along one axis: (read start, core start, core stop)."""
    stride = tile_size - overlap
    n = tile_count(size, tile_size, overlap)
    half = overlap // 2
    spans = []
    for k in range(n):
        start = k * stride
        core_start = 0 if k == 0 else start + half
        core_stop = size if k == n - 1 else (k + 1) * stride + half
        spans.append((start, min(core_start, size), min(core_stop, size)))
    return spans


def plan_tiles(height: int, width: int, tile_size: int, overlap: int) -> list[Tile]:
    """Tiles covering a ``height x width`` raster, row by row (tile rows top to bottom)."""
    if height < 1 or width < 1:
        raise InputError(f"Cannot tile an empty raster of {height} x {width} pixels.")
    rows = _axis_spans(height, tile_size, overlap)
    cols = _axis_spans(width, tile_size, overlap)
    tiles = []
    for i, (r0, cr0, cr1) in enumerate(rows):
        for j, (c0, cc0, cc1) in enumerate(cols):
            tiles.append(
                Tile(
                    read=Window(r0, c0, tile_size, tile_size),
                    core=Window(cr0, cc0, cr1 - cr0, cc1 - cc0),
                    index=(i, j),
                    taper=(i > 0, i < len(rows) - 1, j > 0, j < len(cols) - 1),
                )
            )
    return tiles


def iter_tile_rows(tiles: list[Tile]) -> Iterator[list[Tile]]:
    """Group a plan (as returned by :func:`plan_tiles`) into its tile rows."""
    row: list[Tile] = []
    for tile in tiles:
        if row and tile.index[0] != row[0].index[0]:
            yield row
            row = []
        row.append(tile)
    if row:
        yield row


# ------------------------------------------------------------------ blending
def _ramp_cosine(overlap: int) -> np.ndarray:
    t = (np.arange(overlap, dtype=np.float64) + 0.5) / overlap
    return np.sin(0.5 * np.pi * t) ** 2


def _ramp_feather(overlap: int) -> np.ndarray:
    return (np.arange(overlap, dtype=np.float64) + 0.5) / overlap


RAMPS: dict[str, Callable[[int], np.ndarray]] = {"cosine": _ramp_cosine, "feather": _ramp_feather}
"""Rising ramps of length ``overlap``; each satisfies ``r[i] + r[overlap - 1 - i] == 1``."""

BLEND_MODES = (*RAMPS, "none")


def axis_weights(tile_size: int, overlap: int, kind: str = "cosine", start: bool = True,
                 end: bool = True) -> np.ndarray:
    """1-D weights of one tile along one axis (float64), tapered at ``start``/``end`` if asked."""
    check_tiling(tile_size, overlap)
    w = np.ones(tile_size, dtype=np.float64)
    if kind == "none":
        half = overlap // 2
        if start:
            w[:half] = 0.0
        if end:
            w[tile_size - (overlap - half):] = 0.0
        return w
    ramp = RAMPS[check_choice(kind, RAMPS, "blend mode")](overlap) if overlap else np.zeros(0)
    if overlap:
        if start:
            w[:overlap] = ramp
        if end:
            w[tile_size - overlap:] = ramp[::-1]
    return w


def blend_weights(
    tile_size: int,
    overlap: int,
    kind: str = "cosine",
    taper: tuple[bool, bool, bool, bool] = (True, True, True, True),
) -> np.ndarray:
    """2-D float32 weights of one tile; ``taper`` = (top, bottom, left, right) as in :attr:`Tile.taper`."""
    top, bottom, left, right = taper
    rows = axis_weights(tile_size, overlap, kind, top, bottom)
    cols = axis_weights(tile_size, overlap, kind, left, right)
    return np.outer(rows, cols).astype(np.float32)


def tile_weights(tile: Tile, tile_size: int, overlap: int, kind: str = "cosine") -> np.ndarray:
    """Weights of ``tile`` in a plan: tapered only where it shares an overlap with a neighbour."""
    return blend_weights(tile_size, overlap, kind, tile.taper)


def scaled_tile(tile: Tile, factor: int) -> Tile:
    """``tile`` on a grid ``factor`` times finer (e.g. a latent-grid tile in output pixels)."""
    return Tile(tile.read.scaled(factor), tile.core.scaled(factor), tile.index, tile.taper)


class StripBlender:
    """Blend weighted tile outputs one tile row at a time and hand out the finished raster rows.

    Tiles come from a :func:`plan_tiles` plan (in output pixels), tile row after tile row, as
    ``(channels, tile_size, tile_size)`` outputs. Memory: one strip of float64 accumulators
    (``channels x tile_size x padded_width``) whatever the raster's height.
    """

    def __init__(self, height: int, width: int, tile_size: int, overlap: int, blend: str = "cosine",
                 padded_width: int | None = None) -> None:
        check_choice(blend, BLEND_MODES, "blend mode")
        self.height, self.width = height, width
        self.tile_size, self.overlap, self.blend = tile_size, overlap, blend
        self.stride = tile_size - overlap
        self.padded_width = max(width, padded_width or 0)
        self._acc: np.ndarray | None = None  # (channels, tile_size, padded_width), allocated on first add
        self._wsum = np.zeros((tile_size, self.padded_width), dtype=np.float64)
        self._weights: dict[tuple[bool, bool, bool, bool], np.ndarray] = {}
        self.top = 0  # raster row of the accumulators' first row
        self.written = 0  # rows handed out so far

    def add(self, tile: Tile, y: np.ndarray) -> None:
        """Accumulate the output ``y`` (``(channels, t, t)``) of a tile of the current tile row."""
        w = self._weights.get(tile.taper)
        if w is None:
            w = self._weights[tile.taper] = tile_weights(tile, self.tile_size, self.overlap, self.blend)
        if self._acc is None:
            self._acc = np.zeros((y.shape[0], self.tile_size, self.padded_width), dtype=np.float64)
        rows = slice(tile.read.row_off - self.top, tile.read.row_off - self.top + self.tile_size)
        cols = slice(tile.read.col_off, tile.read.col_end)
        self._acc[:, rows, cols] += y * w
        self._wsum[rows, cols] += w

    def finished(self, last: bool, block_rows: int | None = None) -> Iterator[tuple[Window, np.ndarray]]:
        """Rows no later tile touches (all rows left when ``last``), as ``(window, (channels, n, width)
        float32)`` blocks of at most ``block_rows`` rows; consume them before the next :meth:`add`."""
        assert self._acc is not None, "finished() before any add()"
        end = self.height if last else min(self.height, self.top + self.stride)
        while self.written < end:
            n = min(block_rows or end, end - self.written)
            r0 = self.written - self.top
            acc = self._acc[:, r0 : r0 + n, : self.width]
            values = acc / np.maximum(self._wsum[r0 : r0 + n, : self.width], 1e-12)
            window = Window(self.written, 0, n, self.width)
            self.written += n
            yield window, values.astype(np.float32)
        if not last:  # keep the rows shared with the next tile row, zero the rest
            keep = self.tile_size - self.stride
            self._acc[:, :keep] = self._acc[:, self.stride :]
            self._acc[:, keep:] = 0.0
            self._wsum[:keep] = self._wsum[self.stride :]
            self._wsum[keep:] = 0.0
            self.top += self.stride


class RowQueue:
    """Rows handed in top to bottom and taken out in blocks of any height, first in, first out.

    Each :meth:`push` takes one or more arrays that share their rows along ``axis`` (e.g. latents and
    the cells to keep); :meth:`take` returns the first ``n`` rows of each. Consumers regroup rows as
    they come (tile rows, decoder blocks) into the blocks they need (entropy-coded strips, output
    blocks, whole GeoTIFF block rows) without holding more than one block plus one addition.
    """

    def __init__(self, axis: int = 0) -> None:
        self.axis = axis
        self._pending: list[tuple[np.ndarray, ...]] = []
        self.top = 0
        """Index of the first row held."""
        self.rows = 0
        """Rows held."""

    @property
    def end(self) -> int:
        """Index of the row after the last one held: the next :meth:`push` starts there."""
        return self.top + self.rows

    def push(self, *parts: np.ndarray) -> None:
        """Append rows: one or more arrays with the same number of rows along ``axis``."""
        self._pending.append(parts)
        self.rows += parts[0].shape[self.axis]

    def take(self, n: int) -> tuple[np.ndarray, ...]:
        """The first ``n`` rows held (``0 < n <= rows``) of each array, removed from the queue."""
        if not 0 < n <= self.rows:
            raise ValueError(f"cannot take {n} rows of {self.rows} held")
        merged = [np.concatenate(arrays, axis=self.axis) if len(arrays) > 1 else arrays[0]
                  for arrays in zip(*self._pending, strict=True)]
        lead = (slice(None),) * self.axis
        rests = tuple(m[(*lead, slice(n, None))] for m in merged)
        self._pending = [rests] if n < self.rows else []
        self.top, self.rows = self.top + n, self.rows - n
        return tuple(m[(*lead, slice(0, n))] for m in merged)
