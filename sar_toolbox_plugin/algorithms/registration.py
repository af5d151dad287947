"""What the co-registration algorithms (``coregister``, ``keypointregister``, ``applytransform``) share.

Their group, the names of the parameters they have in common, the reference raster with its
bands, the resampling choice and the optional files they write (declared once, read with the
same suffixes in ``execute``).
"""

from __future__ import annotations

from collections.abc import Sequence

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import COREGISTRATION, SarAlgorithm
from .params import FileOutput


class RegistrationAlgorithm(SarAlgorithm):
    """Base of the co-registration algorithms."""

    GROUP = COREGISTRATION
    REFERENCE_BANDS = "REFERENCE_BANDS"
    TRANSFORM = "TRANSFORM"
    RESAMPLE = "RESAMPLE"
    RESAMPLING = "RESAMPLING"
    TIEPOINTS = "TIEPOINTS"
    GCP_FILE = "GCP_FILE"
    REPORT = "REPORT"

    #: The Georeferencer GCP file and the JSON report, written when given a path.
    GCP_OUTPUT = FileOutput(GCP_FILE, "Georeferencer GCP file", ".points", "GCP points")
    REPORT_OUTPUT = FileOutput(REPORT, "Report", ".json", "JSON")

    def add_reference(self, bands_label: str) -> None:
        """The reference raster and its bands (several, averaged; optional)."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE, self.tr("Reference raster")))
        self.addParameter(QgsProcessingParameterBand(
            self.REFERENCE_BANDS, self.tr(bands_label), parentLayerParameterName=self.REFERENCE,
            optional=True, allowMultiple=True,
        ))  # fmt: skip

    def add_tiepoints_output(self, layer_type: int = QgsProcessing.TypeVectorAnyGeometry) -> None:
        """The tie points (a GeoPackage layer), written when given a path."""
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.TIEPOINTS, self.tr("Tie points"), layer_type, optional=True, createByDefault=False,
        ))  # fmt: skip

    def add_resample(self, resamplings: Sequence[str], advanced: bool = False) -> None:
        """Whether to warp the output (default no), and with which resampling (default the second option)."""
        label = self.tr("Resample (warp) the output")
        self.addParameter(QgsProcessingParameterBoolean(self.RESAMPLE, label, defaultValue=False))
        self.add_enum(self.RESAMPLING, "Resampling", resamplings, default=1, advanced=advanced)
