"""What the co-registration algorithms (``coregister``, ``keypointregister``, ``applytransform``) share.

Their group, the names of the parameters they have in common, the reference raster with its
bands, the resampling choice and the optional files they write (declared once, read with the
same suffixes in ``execute``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import COREGISTRATION, SarAlgorithm
from .params import FileOutput, ParameterValues


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
    CHECKERBOARD = "CHECKERBOARD"
    #: Name of each loaded output layer after the input's: "<input> tie points".
    LAYER_NAMES: Mapping[str, str] = MappingProxyType(
        {TIEPOINTS: "tie points", CHECKERBOARD: "before/after checkerboard"})

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
        """The tie points (a GeoPackage layer), written when given a path.

        The dialog proposes a temporary file (``createByDefault``): in QGIS 3.22 a skipped output's
        "Open output file after running algorithm" box stays disabled when a path is typed in, so the
        layer would be written but never loaded. Scripts and ``qgis_process`` write it only when asked.
        """
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.TIEPOINTS, self.tr("Tie points"), layer_type, optional=True, createByDefault=True,
        ))  # fmt: skip

    def add_checkerboard_output(self) -> None:
        """The before/after checkerboard, a GeoTIFF loaded into the project (as the tie points)."""
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.CHECKERBOARD, self.tr("Before/after checkerboard"), optional=True, createByDefault=True,
        ))  # fmt: skip

    def name_registration_layers(self, values: ParameterValues, paths: Mapping[str, str | None],
                                 corrected: str) -> None:
        """Name the loaded layers after the input: "<input> (<corrected>)" for OUTPUT, then
        :attr:`LAYER_NAMES` ("<input> tie points")."""
        source = values.source_name(self.INPUT)
        names = {self.OUTPUT: f"{source} ({corrected})",
                 **{output: f"{source} {label}" for output, label in self.LAYER_NAMES.items()}}
        for output, path in paths.items():
            if output in names:
                values.name_output_layer(path, names[output])

    def add_resample(self, resamplings: Sequence[str], advanced: bool = False) -> None:
        """Whether to warp the output (default no), and with which resampling (default the second option)."""
        label = self.tr("Resample (warp) the output")
        self.addParameter(QgsProcessingParameterBoolean(self.RESAMPLE, label, defaultValue=False))
        self.add_enum(self.RESAMPLING, "Resampling", resamplings, default=1, advanced=advanced)
