"""How the codec lays a scene out in tiles: tile size and overlap, and tiles per network call.

Shared by encoding, decoding and the restoration filter's fit, which must tile alike.
"""

from __future__ import annotations

from ..errors import InputError
from ..metadata import ModelMetadata

BATCH_SIZE = 1
"""Tiles per network call of the codec. On CPU a batch of 512 x 512 tiles is no faster than one tile at a
time, and ONNX Runtime's memory arena grows with the batch (2048^2 scene at r2: peak RSS 412 MB with
batch 4, 220 MB encoding and 254 MB decoding with batch 1, same seconds)."""

TILE_FACTOR = 2
"""Codec tiles are this many times the model's training tile and overlap (convolutions are
translation-equivariant): more context per latent and fewer tile boundaries, i.e. smaller seams."""


def default_tiling(meta: ModelMetadata, tile_size: int | None, overlap: int | None) -> tuple[int, int]:
    """Tile size and overlap to use: the given ones, else :data:`TILE_FACTOR` times the model's."""
    tile = tile_size or TILE_FACTOR * meta.tile_size
    ovl = TILE_FACTOR * meta.overlap if overlap is None else overlap
    return tile, ovl


def check_tiling(tile_size: int, overlap: int, scale: int) -> None:
    """Raise :class:`InputError` unless tile size and overlap suit a latent stride ``scale``."""
    if tile_size < scale or tile_size % scale or overlap % scale or not 0 <= overlap < tile_size:
        raise InputError(
            f"Tile size {tile_size} and overlap {overlap} must be multiples of the model's latent stride "
            f"{scale}, with 0 <= overlap < tile size; choose e.g. tile size {16 * scale} and overlap "
            f"{2 * scale}."
        )
