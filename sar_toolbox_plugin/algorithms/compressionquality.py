"""``sartoolbox:compressionquality`` — PSNR, SSIM, ENL ratio, EPI and bits per pixel of a reconstruction."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingFeedback,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
)

from ..engine.preprocess import INPUT_KINDS
from .base import COMPRESSION, SarAlgorithm, engine_callbacks
from .params import BandInput, Figure, ParameterValues


class CompressionQualityAlgorithm(SarAlgorithm):
    """Thin adapter over ``engine.codec.quality.assess``."""

    NAME = "compressionquality"
    DISPLAY_NAME = "Compression quality (PSNR, SSIM, ENL, EPI)"
    GROUP = COMPRESSION
    HELP = """Measures how well a compressed SAR image keeps what analysts need.

<b>Reference (original) raster</b>: the raster that was compressed; <b>Reference band</b>: its band \
(band 1 when not set); <b>Reference values are</b>: what it holds (intensity, amplitude or dB).
<b>Reconstruction (dB raster) or compressed .sarz file</b>: a reconstruction raster in dB \
(e.g. from <i>Decompress SAR raster</i>) or a <i>.sarz</i> \
file (decoded on the fly; then BPP is its real size: 8 × bytes / (width × height)).

<b>PSNR</b> in the dB domain, peak = dB range of the reference's valid pixels. <b>SSIM</b> on the dB \
images (same data range). <b>ENL ratio</b> = ENL of the reconstruction / ENL of the original on the \
homogeneous blocks of the original (lowest coefficient of variation of linear intensity): 1 = speckle \
statistics kept, above 1 = smoothed. <b>EPI</b> = correlation of Sobel gradient magnitudes.
<b>HTML report</b> (optional, none by default; its folder is checked before any work): the figures; \
the model and rate point, file sizes and compression ratio (for a .sarz file); reference, \
reconstruction and difference images with their colour bars and the stretches used; and a \
full-resolution crop of the window where the difference is largest."""

    REFERENCE_KIND = "REFERENCE_KIND"
    OUTPUT_HTML = "OUTPUT_HTML"

    BAND_INPUT = BandInput(INPUT_KINDS, raster=SarAlgorithm.REFERENCE, kind=REFERENCE_KIND)
    FIGURES = (
        Figure("PSNR", "PSNR (dB)"),
        Figure("SSIM", "SSIM"),
        Figure("ENL_RATIO", "ENL ratio"),
        Figure("EPI", "EPI"),
        Figure("BPP", "Bits per pixel"),
    )

    def add_parameters(self) -> None:
        self.add_band_input(
            self.BAND_INPUT, ("Reference (original) raster", "Reference band", "Reference values are")
        )
        self.addParameter(
            QgsProcessingParameterFile(self.INPUT,
                                       self.tr("Reconstruction (dB raster) or compressed .sarz file"))
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("HTML report"),
                                                  fileFilter="HTML files (*.html)", optional=True)
        )

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        reference, band, kind = values.band_input(self.BAND_INPUT)
        reconstruction = values.file(self.INPUT)
        html_path = values.optional_file_output(self.OUTPUT_HTML)

        from ..engine.codec.quality.metrics import assess  # lazy: pulls in rasterio, scipy, scikit-image

        report = assess(reference, reconstruction, band=band, reference_kind=kind, html_path=html_path,
                        **engine_callbacks(feedback))
        return self.outputs({self.OUTPUT_HTML: html_path}, report)
