"""``sartoolbox:translate`` — SAR to an optical-looking RGB rendering (pix2pix), tile by tile."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsProcessingFeedback, QgsProcessingParameterRasterDestination

from ..engine.preprocess import INPUT_KINDS
from .base import TRANSLATION, SarAlgorithm, engine_callbacks
from .params import BandInput, Figure, ParameterValues


class TranslateAlgorithm(SarAlgorithm):
    """SAR -> synthetic RGB (a thin adapter over ``engine.translation.translate``)."""

    NAME = "translate"
    DISPLAY_NAME = "Translate SAR to optical-looking RGB (synthetic)"
    GROUP = TRANSLATION
    HELP = """Renders one SAR band as an optical-looking RGB image. The shipped model is a colouriser: \
the brightness comes from the SAR itself (speckle-smoothed, so fields, roads, rivers and shorelines \
stay where the SAR shows them), the colour and the large-scale brightness are guessed by a small network \
from the SAR's local level and texture at 1/8 resolution. Examples and scores beside trivial renderings: \
docs/BENCHMARKS.md ("SAR-to-optical translation") and the model card in models/.

<b>The output is a synthetic rendering, not a measurement.</b> Good for: a quick, familiar-looking view \
of a SAR scene (land and water apart, field patterns, settlements in plausible colours). Not good for: \
reflectance, vegetation or water indices, classification ground truth, or evidence of what is on the \
ground; colours are a guess learned from ten real image pairs and often wrong (a flooded field may come \
out green, a bright optical surface dark). Where the SAR and the optical image disagree in brightness \
(smooth bare soil is dark in SAR, bright in optical), the rendering follows the SAR. The file is tagged \
SAR_TOOLBOX_SYNTHETIC_IMAGERY=true with the model id.

<b>Input raster</b>: a file-based SAR raster (GeoTIFF or any format GDAL reads), real-valued. \
Complex (SLC) data is refused: compute the intensity |z|² first.
<b>Band</b>: the SAR band to translate (e.g. VV). Required when the raster has several bands.
<b>Input values are</b>: <i>intensity</i> (σ0, power), <i>amplitude</i> or <i>db</i>. They are \
converted to dB and normalised exactly as in training.
<b>Model</b>: a translation .onnx exported by this toolbox (optional; default: the shipped model, \
see its card in models/). A model of another task is refused.
<b>Output</b>: 3-band (red, green, blue) uint8 GeoTIFF on the input's grid, CRS and geotransform; \
input nodata pixels stay nodata (0). Inputs smaller than one tile are padded; larger ones are \
processed in overlapping tiles whose outputs are blended. An input without any valid pixel is an \
error and nothing is written; a cancelled or failed run leaves nothing behind."""

    BAND_INPUT = BandInput(INPUT_KINDS)
    FIGURES = (
        Figure("VALID_PIXELS", "Valid pixels"),
        Figure("TILES", "Tiles"),
    )

    def add_parameters(self) -> None:
        # No default band: a multi-band raster without BAND is an error, a single band needs none.
        self.add_band_input(
            self.BAND_INPUT, ("Input SAR raster", "Band", "Input values are"), default_band=None
        )
        self.add_onnx_file(self.MODEL, "Translation model (.onnx; default: the shipped model)")
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Synthetic RGB output"))
        )

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        source, band, kind = values.band_input(self.BAND_INPUT)  # band 0: not set
        model = values.optional_file(self.MODEL)
        output = values.output_raster(self.OUTPUT)
        values.name_output_layer(output, f"{values.source_name(self.INPUT)} (optical-like rendering)")

        from ..engine.translation import translate  # lazy: pulls in rasterio and onnxruntime

        result = translate(
            source, output, band=band or None, input_kind=kind, model=model, **engine_callbacks(feedback)
        )
        return self.outputs({self.OUTPUT: output}, result)
