"""``sartoolbox:applytransform`` — apply a saved co-registration to another raster or band."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..engine.coregistration.api import TRANSFORMS as TRANSFORM_KINDS
from ..engine.coregistration.outputs import RESAMPLING as RESAMPLING_METHODS
from .base import SarAlgorithm, engine_callbacks

HELP = """Applies a co-registration measured by 'Co-register raster' to another raster (e.g. another \
band or polarisation of the same acquisition, possibly at another pixel size, in the same CRS).

<b>Co-registration</b>: the JSON report written by 'Co-register raster' (its fitted transform is used \
as it is) or its tie-point GeoPackage (the used points are fitted again).
<b>Raster to correct</b>: the raster the correction is applied to.
<b>Transform</b>: <i>saved</i> = the report's transform (for tie points: affine when there are enough \
points, else shift); or refit the tie points as shift, affine, poly2 or poly3.
<b>Resample (warp) the output</b>: off = a shift/affine correction only changes the geotransform of the \
<b>Corrected raster</b> (pixels untouched); on = GDAL warps onto the raster's own grid with the chosen \
<b>Resampling</b>. Polynomial corrections are always warped."""


class ApplyTransformAlgorithm(SarAlgorithm):
    """Apply a saved report or tie-point set (``engine.coregistration.apply_transform``)."""

    SOURCE = "SOURCE"
    INPUT = "INPUT"
    TRANSFORM = "TRANSFORM"
    RESAMPLE = "RESAMPLE"
    RESAMPLING = "RESAMPLING"
    OUTPUT = "OUTPUT"

    TRANSFORMS = ("saved", *TRANSFORM_KINDS)
    RESAMPLINGS = RESAMPLING_METHODS

    NAME = "applytransform"
    DISPLAY_NAME = "Apply co-registration"
    GROUP = "Co-registration"
    GROUP_ID = "coregistration"
    HELP = HELP

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                self.SOURCE,
                self.tr("Co-registration (report .json or tie points .gpkg)"),
                fileFilter="Co-registration (*.json *.gpkg)",
            )
        )
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Raster to correct")))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.TRANSFORM, self.tr("Transform"), options=list(self.TRANSFORMS), defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.RESAMPLE, self.tr("Resample (warp) the output"), defaultValue=False
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.RESAMPLING, self.tr("Resampling"), options=list(self.RESAMPLINGS), defaultValue=1
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Corrected raster")))

    def execute(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        source = self.parameterAsFile(parameters, self.SOURCE, context)
        inp = self.raster_path(parameters, self.INPUT, context)
        output = self.output_raster_path(parameters, self.OUTPUT, context)
        kind = self.TRANSFORMS[self.parameterAsEnum(parameters, self.TRANSFORM, context)]

        from ..engine.coregistration.api import apply_transform  # lazy: pulls in rasterio

        apply_transform(
            source,
            inp,
            output,
            transform=None if kind == "saved" else kind,
            resample=self.parameterAsBoolean(parameters, self.RESAMPLE, context),
            resampling=self.RESAMPLINGS[self.parameterAsEnum(parameters, self.RESAMPLING, context)],
            **engine_callbacks(feedback),
        )
        return {self.OUTPUT: output}
