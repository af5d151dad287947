"""``sartoolbox:compressionquality`` — PSNR, SSIM, ENL ratio, EPI and bits per pixel of a reconstruction."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import SarAlgorithm, engine_callbacks

HELP = """Measures how well a compressed SAR image keeps what analysts need.

<b>Reference (original) raster</b>: the raster that was compressed; <b>Reference band</b>: its band; \
<b>Reference values are</b>: what it holds (intensity, amplitude or dB).
<b>Reconstruction (dB raster) or compressed .sarz file</b>: a reconstruction raster in dB \
(e.g. from <i>Decompress SAR raster</i>) or a <i>.sarz</i> \
file (decoded on the fly; then BPP is its real size: 8 × bytes / (width × height)).

<b>PSNR</b> in the dB domain, peak = dB range of the reference's valid pixels. <b>SSIM</b> on the dB \
images (same data range). <b>ENL ratio</b> = ENL of the reconstruction / ENL of the original on the \
homogeneous blocks of the original (lowest coefficient of variation of linear intensity): 1 = speckle \
statistics kept, above 1 = smoothed. <b>EPI</b> = correlation of Sobel gradient magnitudes.
<b>HTML report</b> (optional): reference, reconstruction and difference images with the figures."""


class CompressionQualityAlgorithm(SarAlgorithm):
    """Thin adapter over ``engine.quality.assess``."""

    REFERENCE = "REFERENCE"
    BAND = "BAND"
    REFERENCE_KIND = "REFERENCE_KIND"
    INPUT = "INPUT"
    OUTPUT_HTML = "OUTPUT_HTML"
    PSNR = "PSNR"
    SSIM = "SSIM"
    ENL_RATIO = "ENL_RATIO"
    EPI = "EPI"
    BPP = "BPP"

    KINDS = ("intensity", "amplitude", "db")

    NAME = "compressionquality"
    DISPLAY_NAME = "Compression quality (PSNR, SSIM, ENL, EPI)"
    GROUP = "Compression"
    GROUP_ID = "compression"
    HELP = HELP

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.REFERENCE, self.tr("Reference (original) raster"))
        )
        self.addParameter(
            QgsProcessingParameterBand(self.BAND, self.tr("Reference band"), defaultValue=1,
                                       parentLayerParameterName=self.REFERENCE)
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.REFERENCE_KIND, self.tr("Reference values are"),
                                       options=list(self.KINDS), defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterFile(self.INPUT,
                                       self.tr("Reconstruction (dB raster) or compressed .sarz file"))
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("HTML report"),
                                                  fileFilter="HTML files (*.html)", optional=True)
        )
        for name, label in ((self.PSNR, "PSNR (dB)"), (self.SSIM, "SSIM"), (self.ENL_RATIO, "ENL ratio"),
                            (self.EPI, "EPI"), (self.BPP, "Bits per pixel")):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(label)))

    def execute(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        reference = self.raster_path(parameters, self.REFERENCE, context)
        band = self.parameterAsInt(parameters, self.BAND, context)
        kind = self.KINDS[self.parameterAsEnum(parameters, self.REFERENCE_KIND, context)]
        reconstruction = self.parameterAsFile(parameters, self.INPUT, context)
        html_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context) or None

        from ..engine.quality import assess  # lazy: pulls in rasterio, scipy, scikit-image

        report = assess(reference, reconstruction, band=band, reference_kind=kind, html_path=html_path,
                        **engine_callbacks(feedback))
        results: dict[str, Any] = {
            self.PSNR: report.psnr,
            self.SSIM: report.ssim,
            self.ENL_RATIO: report.enl_ratio,
            self.EPI: report.epi,
            self.BPP: report.bpp,
        }
        if html_path:
            results[self.OUTPUT_HTML] = html_path
        return results
