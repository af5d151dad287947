"""Learned SAR codec: entropy coding, the compressed file format, encode and decode.

Importing this package is cheap; onnxruntime, rasterio and constriction are
imported inside the functions that need them.
"""

from __future__ import annotations

from .entropy import EntropyModelTable

__all__ = ["EntropyModelTable"]
