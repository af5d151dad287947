"""Shared training data: SAR scene sources in dB and a quality-filtered random patch sampler."""

from .sources import (
    DisplayPngMapping,
    GeoTiffFolderSource,
    InMemorySource,
    PatchSampler,
    PatchSource,
    Sen12Source,
    SyntheticSource,
    load_display_png_db,
)

__all__ = [
    "DisplayPngMapping",
    "GeoTiffFolderSource",
    "InMemorySource",
    "PatchSampler",
    "PatchSource",
    "Sen12Source",
    "SyntheticSource",
    "load_display_png_db",
]
