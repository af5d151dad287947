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
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .errors import InputError


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


def raster_window(height: int, width: int) -> Window:
    """The window covering a whole raster."""
    return Window(0, 0, height, width)


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
    try:
        ramp = RAMPS[kind](overlap) if overlap else np.zeros(0)
    except KeyError:
        raise InputError(f"Unknown blend mode '{kind}'; use one of {', '.join(BLEND_MODES)}.") from None
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
