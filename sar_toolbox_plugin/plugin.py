"""The QGIS plugin object: registers the SAR Toolbox Processing provider."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import SarToolboxProvider


class SarToolboxPlugin:
    """Adds the ``sartoolbox`` provider to the Processing registry and removes it on unload.

    ``initProcessing`` is what ``qgis_process`` calls; the GUI calls ``initGui``.
    """

    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.provider: SarToolboxProvider | None = None

    def initProcessing(self) -> None:
        """Register the provider once (idempotent)."""
        if self.provider is None:
            self.provider = SarToolboxProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Called by the QGIS GUI: the toolbox is the whole user interface."""
        self.initProcessing()

    def unload(self) -> None:
        """Remove the provider when the plugin is unloaded or reloaded."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
