"""``sartoolbox:todb`` — linear SAR intensity/amplitude to decibels, and back."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..engine.metadata import NOISE_FLOOR_DB as DEFAULT_NOISE_FLOOR_DB
from ..engine.preprocess import LINEAR_KINDS
from .base import RADIOMETRY, SarAlgorithm, engine_callbacks
from .params import BandInput, Figure, ParameterValues, as_advanced


class ToDbAlgorithm(SarAlgorithm):
    """Linear ↔ dB conversion of one SAR band (a thin adapter over ``engine.radiometry.convert_db``)."""

    NAME = "todb"
    DISPLAY_NAME = "Convert SAR to/from decibels"
    GROUP = RADIOMETRY
    HELP = """Converts one band of a SAR raster between linear scale and decibels (dB).

<b>Input raster</b>: a file-based raster (GeoTIFF or any format GDAL reads). Complex (SLC) data is not \
supported: compute the intensity |z|² first (e.g. with the Raster calculator).
<b>Band</b>: the band to convert (1-based); band 1 when not set.
<b>Input values are</b>: <i>intensity</i> (power, σ0/β0/γ0): dB = 10·log10(I); <i>amplitude</i> \
(|z|): dB = 20·log10(A).
<b>Inverse</b>: convert dB back to linear intensity or amplitude (exact inverse of the forward conversion).
<b>Noise floor (dB)</b>: forward conversion only; dB values below it are set to it.
<b>Output</b>: single-band float32 GeoTIFF with the input's CRS, geotransform and size; nodata is -9999.
The run also returns the number of valid and nodata pixels and the output's minimum and maximum.

Invalid pixels (nodata, NaN, ±inf and, for the forward conversion, zero or negative values) become \
nodata in the output; they never leak into valid pixels. The output is written to a temporary file \
and only moved into place when the run succeeds, so a cancelled or failed run leaves nothing behind."""

    INVERSE = "INVERSE"
    NOISE_FLOOR_DB = "NOISE_FLOOR_DB"

    BAND_INPUT = BandInput(tuple(LINEAR_KINDS))
    FIGURES = (
        Figure("VALID_PIXELS", "Valid pixels"),
        Figure("NODATA_PIXELS", "Nodata pixels"),
        Figure("MINIMUM", "Minimum of the output"),
        Figure("MAXIMUM", "Maximum of the output"),
    )

    def add_parameters(self) -> None:
        self.add_band_input(self.BAND_INPUT)
        self.addParameter(
            QgsProcessingParameterBoolean(self.INVERSE, self.tr("Inverse (dB to linear)"), defaultValue=False)
        )
        self.addParameter(
            as_advanced(
                QgsProcessingParameterNumber(
                    self.NOISE_FLOOR_DB,
                    self.tr("Noise floor (dB)"),
                    type=QgsProcessingParameterNumber.Double,
                    defaultValue=DEFAULT_NOISE_FLOOR_DB,
                    minValue=-100.0,
                    maxValue=0.0,
                )
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Output")))

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        source, band, kind = values.band_input(self.BAND_INPUT)
        inverse = values.boolean(self.INVERSE)
        noise_floor_db = values.number(self.NOISE_FLOOR_DB)
        output = values.output_raster(self.OUTPUT)
        scale = "linear" if inverse else "dB"
        values.name_output_layer(output, f"{values.source_name(self.INPUT)} ({scale})")

        from ..engine.radiometry.convert import convert_db  # lazy: pulls in rasterio

        result = convert_db(
            source,
            output,
            band=band,
            input_kind=kind,
            inverse=inverse,
            noise_floor_db=noise_floor_db,
            **engine_callbacks(feedback),
        )
        return self.outputs({self.OUTPUT: output}, result)
