"""``sartoolbox:applytransform`` — apply a saved co-registration to another raster or band."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingFeedback,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..engine.registration.outputs import RESAMPLING as RESAMPLING_METHODS
from ..engine.registration.shift.api import TRANSFORMS as TRANSFORM_KINDS
from .base import engine_callbacks
from .params import ParameterValues
from .registration import RegistrationAlgorithm


class ApplyTransformAlgorithm(RegistrationAlgorithm):
    """Apply a saved report or tie-point set (``engine.registration.shift.apply_transform``)."""

    NAME = "applytransform"
    DISPLAY_NAME = "Apply co-registration"
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

    SOURCE = "SOURCE"

    TRANSFORMS = ("saved", *TRANSFORM_KINDS)
    RESAMPLINGS = RESAMPLING_METHODS

    def add_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                self.SOURCE,
                self.tr("Co-registration (report .json or tie points .gpkg)"),
                fileFilter="Co-registration (*.json *.gpkg)",
            )
        )
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Raster to correct")))
        self.add_enum(self.TRANSFORM, "Transform", self.TRANSFORMS)
        self.add_resample(self.RESAMPLINGS)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Corrected raster")))

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        source = values.file(self.SOURCE)
        inp = values.raster(self.INPUT)
        output = values.output_raster(self.OUTPUT)
        values.name_output_layer(output, f"{values.source_name(self.INPUT)} (corrected)")
        kind = values.enum(self.TRANSFORM, self.TRANSFORMS)

        from ..engine.registration.shift.api import apply_transform  # lazy: pulls in rasterio

        apply_transform(
            source,
            inp,
            output,
            transform=None if kind == "saved" else kind,
            resample=values.boolean(self.RESAMPLE),
            resampling=values.enum(self.RESAMPLING, self.RESAMPLINGS),
            **engine_callbacks(feedback),
        )
        return self.outputs({self.OUTPUT: output})
