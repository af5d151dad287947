"""SAR Toolbox engine: georeferencing-aware, tiled ONNX inference for SAR rasters.

No qgis and no torch imports anywhere in this package; heavy optional
dependencies (onnxruntime, rasterio) are imported inside the functions that
need them so that ``import engine`` stays cheap.
"""

from __future__ import annotations

import logging

from .errors import (
    CancelledError,
    CompressedFileError,
    DependencyError,
    InputError,
    ModelError,
    RasterIOError,
    RegistrationError,
    SarToolboxError,
    UnsupportedDataError,
)
from .setup.bundled import version

__version__ = version()
"""From ``metadata.txt`` (the QGIS plugin metadata), the version's one source."""

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CancelledError",
    "CompressedFileError",
    "DependencyError",
    "InputError",
    "ModelError",
    "RasterIOError",
    "RegistrationError",
    "SarToolboxError",
    "UnsupportedDataError",
    "__version__",
]
