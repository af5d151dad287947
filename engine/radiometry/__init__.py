"""Radiometry: dB conversion of SAR bands (and the place of a future speckle filter).

Entry point: :func:`convert_db` (linear intensity/amplitude to dB and back, strip by strip).
"""

from __future__ import annotations

from .convert import ConvertResult, convert_db

__all__ = ["ConvertResult", "convert_db"]
