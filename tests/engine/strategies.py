"""Hypothesis strategies shared by the engine's property tests."""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import strategies as st


class Tiling(NamedTuple):
    height: int
    width: int
    tile_size: int
    overlap: int


@st.composite
def tilings(draw: st.DrawFn, tile_sizes: tuple[int, int], half_overlap: bool = False) -> Tiling:
    """A raster of 1..100 x 1..100 pixels and a tiling of it: a tile size in ``tile_sizes`` (inclusive) and
    an overlap below it, or at most half of it with ``half_overlap``."""
    height, width = draw(st.integers(1, 100)), draw(st.integers(1, 100))
    tile_size = draw(st.integers(*tile_sizes))
    overlap = draw(st.integers(0, tile_size // 2 if half_overlap else tile_size - 1), label="overlap")
    return Tiling(height, width, tile_size, overlap)
