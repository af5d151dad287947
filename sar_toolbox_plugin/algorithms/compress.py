"""``sartoolbox:compress`` — learned compression of one SAR band into a ``.sarz`` file."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import SarAlgorithm, engine_callbacks

HELP = """Compresses one band of a SAR raster with a learned codec (CNN autoencoder + range-coded latents) \
into one self-describing <i>.sarz</i> file (georeferencing, nodata mask, model id and hash, checksum).

<b>Input raster</b>: intensity, amplitude or dB values (complex SLC is not supported: compute |z|² first).
<b>Input values are</b>: what the band holds; the codec works on dB values.
<b>Rate</b>: the shipped rate points, lowest (r1, smallest file) to highest (r3, best quality); see the \
model cards in the plugin's <i>models</i> folder.
<b>Custom encoder</b>: optional encoder .onnx exported by the SAR Toolbox training package (overrides \
Rate); its decoder must be available when decompressing.
<b>Output</b>: the compressed file. <b>BPP</b> = 8 × file bytes / (width × height).

Nodata, zero, negative and NaN pixels are stored in a lossless mask and come back as nodata."""


def rate_options() -> list[str]:
    """The shipped rate points (or the planned ones when none is installed)."""
    from ..engine.codec.models import DEFAULT_RATES, shipped_rates

    return shipped_rates() or list(DEFAULT_RATES)


class CompressAlgorithm(SarAlgorithm):
    """Thin adapter over ``engine.codec.encode.compress_raster``."""

    INPUT = "INPUT"
    BAND = "BAND"
    INPUT_KIND = "INPUT_KIND"
    RATE = "RATE"
    MODEL = "MODEL"
    OUTPUT = "OUTPUT"
    BPP = "BPP"
    BYTES = "BYTES"

    KINDS = ("intensity", "amplitude", "db")

    NAME = "compress"
    DISPLAY_NAME = "Compress SAR raster (learned codec)"
    GROUP = "Compression"
    GROUP_ID = "compression"
    HELP = HELP

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.rates = rate_options()
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Input raster")))
        self.addParameter(
            QgsProcessingParameterBand(self.BAND, self.tr("Band"), defaultValue=1,
                                       parentLayerParameterName=self.INPUT)
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.INPUT_KIND, self.tr("Input values are"), options=list(self.KINDS),
                                       defaultValue=0)
        )
        default_rate = self.rates.index("r2") if "r2" in self.rates else 0
        self.addParameter(
            QgsProcessingParameterEnum(self.RATE, self.tr("Rate"), options=self.rates,
                                       defaultValue=default_rate)
        )
        self.addParameter(
            QgsProcessingParameterFile(self.MODEL, self.tr("Custom encoder model (optional)"),
                                       extension="onnx", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT, self.tr("Compressed file"),
                                                  fileFilter="SAR Toolbox compressed (*.sarz)")
        )
        self.addOutput(QgsProcessingOutputNumber(self.BPP, self.tr("Bits per pixel")))
        self.addOutput(QgsProcessingOutputNumber(self.BYTES, self.tr("File size (bytes)")))

    def execute(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        source = self.raster_path(parameters, self.INPUT, context)
        band = self.parameterAsInt(parameters, self.BAND, context)
        kind = self.KINDS[self.parameterAsEnum(parameters, self.INPUT_KIND, context)]
        rate = self.rates[self.parameterAsEnum(parameters, self.RATE, context)]
        model = self.parameterAsFile(parameters, self.MODEL, context) or None
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if not output:
            raise QgsProcessingException("OUTPUT: choose a file name for the compressed file.")

        from ..engine.codec.encode import compress_raster  # lazy: pulls in rasterio, onnxruntime

        result = compress_raster(source, output, band=band, input_kind=kind, rate=rate, encoder_path=model,
                                 **engine_callbacks(feedback))
        return {self.OUTPUT: output, self.BPP: result.bpp, self.BYTES: result.bytes}
