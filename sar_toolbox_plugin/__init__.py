"""SAR Toolbox QGIS plugin: a Processing provider for synthetic aperture radar.

QGIS calls :func:`classFactory` when it loads the plugin. Nothing heavy is
imported here: onnxruntime and rasterio are only imported when an algorithm
runs, so the plugin loads even when one of them is missing.
"""

from __future__ import annotations

from typing import Any


def classFactory(iface: Any) -> Any:
    """Return the plugin instance QGIS asks for (``iface`` is the QgisInterface)."""
    from .plugin import SarToolboxPlugin

    return SarToolboxPlugin(iface)
