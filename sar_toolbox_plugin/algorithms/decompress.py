"""``sartoolbox:decompress`` — decode a ``.sarz`` file into a georeferenced GeoTIFF."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingFeedback,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
)

from ..engine.codec.decode import OUTPUT_KINDS
from .base import COMPRESSION, SarAlgorithm, engine_callbacks
from .params import ParameterValues


class DecompressAlgorithm(SarAlgorithm):
    """Thin adapter over ``engine.codec.decode.decompress_file``."""

    NAME = "decompress"
    DISPLAY_NAME = "Decompress SAR raster (learned codec)"
    GROUP = COMPRESSION
    HELP = """Decodes a <i>.sarz</i> file written by <i>Compress SAR raster</i> into a float32 GeoTIFF with \
the original CRS, geotransform (or ground control points and RPCs) and size, one band per coded band \
with its original description (e.g. VV, VH); pixels that were nodata, zero, negative or NaN in the source \
are nodata again.

<b>Compressed file</b>: the <i>.sarz</i> file to decode.
<b>Output values</b>: dB (default), linear intensity or linear amplitude.
<b>Decoder model</b> (advanced, optional): the decoder .onnx to use; by default the decoder named in \
the file is looked up among the plugin's models, and its weights hash must match the file's.

A truncated, corrupted or foreign file, an unknown format version or a missing decoder fails with a \
clear message and writes nothing.
<b>Decoded raster</b>: the output GeoTIFF."""

    OUTPUT_KIND = "OUTPUT_KIND"
    DECODER = "DECODER"

    KINDS = OUTPUT_KINDS

    def add_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterFile(self.INPUT, self.tr("Compressed file"), extension="sarz")
        )
        self.add_enum(self.OUTPUT_KIND, "Output values", self.KINDS)
        self.add_onnx_file(self.DECODER, "Decoder model", advanced=True)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Decoded raster")))

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        source = values.file(self.INPUT)
        kind = values.enum(self.OUTPUT_KIND, self.KINDS)
        decoder = values.optional_file(self.DECODER)
        output = values.output_raster(self.OUTPUT)
        values.name_output_layer(output, f"{values.source_name(self.INPUT)} (decoded)")

        from ..engine.codec.decode import decompress_file  # lazy: pulls in rasterio, onnxruntime

        decompress_file(source, output, output_kind=kind, decoder_path=decoder, **engine_callbacks(feedback))
        return self.outputs({self.OUTPUT: output})
