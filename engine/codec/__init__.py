"""Learned SAR codec: entropy coding, the compressed file format, encode and decode.

Entry points: :func:`compress_raster` (one rate point or model), :func:`compress_choice` (a rate
point, a quality word or a size/PSNR target) and :func:`decompress_file`. Importing this package is
cheap; onnxruntime, rasterio and constriction are imported inside the functions that need them.
"""

from __future__ import annotations

from .decode import DecodeResult, decompress_file
from .encode import EncodeResult, compress_raster
from .entropy import EntropyModelTable
from .target import compress_choice

__all__ = ["DecodeResult", "EncodeResult", "EntropyModelTable", "compress_choice", "compress_raster",
           "decompress_file"]
