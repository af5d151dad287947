"""``sartoolbox:compress`` — learned compression of a SAR raster's bands into one ``.sarz`` file."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
)

from ..engine.preprocess import INPUT_KINDS
from .base import COMPRESSION, SarAlgorithm, engine_callbacks
from .params import BandInput, Figure, ParameterValues, as_advanced


def rate_options() -> list[str]:
    """The shipped rate points (or the planned ones when none is installed): r1..r3 first, so that the
    indices scripts and the graphical models pass (RATE=1 for r2) keep their meaning, then newer ids."""
    from ..engine.codec.models import DEFAULT_RATES, shipped_rates

    shipped = shipped_rates()
    if not shipped:
        return list(DEFAULT_RATES)
    return [r for r in DEFAULT_RATES if r in shipped] + [r for r in shipped if r not in DEFAULT_RATES]


class CompressAlgorithm(SarAlgorithm):
    """Thin adapter over ``engine.codec.encode.compress_raster``."""

    NAME = "compress"
    DISPLAY_NAME = "Compress SAR raster (learned codec)"
    GROUP = COMPRESSION
    HELP = """Compresses the bands of a SAR raster (e.g. VV and VH of a dual-polarisation product) with a \
learned codec (CNN autoencoder + range-coded latents) into one self-describing <i>.sarz</i> file \
(georeferencing - geotransform, or GCPs and RPCs -, band descriptions, nodata mask, model id and hash, \
checksum).

<b>Input raster</b>: intensity, amplitude or dB values (complex SLC is not supported: compute |z|² first).
<b>Band</b>: the one band to compress (1-based); every band when not set, each coded alone (its own \
dB shift and restoration filter) and restored with its description by <i>Decompress</i>.
<b>Input values are</b>: what the band holds; the codec works on dB values.
<b>Rate</b>: the shipped rate points: r1, r2, r3 (lowest to highest rate), then h1 (below r1) and \
h4 (above r3): the same networks with a hyperprior entropy model, and h5 (between h1 and r1): h1 with all \
its networks fine-tuned together; see the model cards \
in the plugin's <i>models</i> folder.
<b>Custom encoder</b>: optional encoder .onnx exported by the SAR Toolbox training package (overrides \
Rate); its decoder must be available when decompressing.
<b>Optimised quantisation</b> (advanced, off by default): latents are rounded towards zero where that \
saves more bits than it costs in squared error (rate-distortion optimised, settings shipped with the model). \
Files get much smaller for a smaller loss in PSNR, but speckle in homogeneous areas is smoothed (ENL rises). \
With a restoration filter, the filter may also differ by decoded value (up to 8 classes), \
which adds PSNR and smooths more. Leave it off when speckle statistics matter.
<b>Restoration filter</b> (advanced, on by default): after coding, the encoder decodes its own file and \
stores the 7 × 7 least-squares filter that brings the decoded image closest to this scene (26 numbers in \
the header); the decoder applies it. Worth a few tenths of a dB PSNR (+0.03 to +0.56 dB in \
docs/BENCHMARKS.md, "Restoration filter cost"); encoding takes about twice as long on scenes up to 1 Mpix \
(the whole scene is decoded once more) and about 1.4-1.8 times as long on larger scenes (fitted on a \
1 Mpix sample of tiles). \
It is left out automatically when it would not pay for its bytes (tiny scenes).
<b>Bright targets</b>: pixels above the model's dB range (ships, corner reflectors) are coded apart, to \
within 0.25 dB, in a section of the file (counted in BPP); pixels below its floor are coded at the floor. \
The log and the outputs <b>N_EXCEPTIONS</b>, <b>EXCEPTION_BYTES</b> and <b>DARK_PIXELS</b> say how many.
<b>Output</b>: the compressed file. <b>BPP</b> = 8 × file bytes / (width × height) (all bands); \
<b>BANDS</b> and the log give each band's bytes and bits per pixel.

Nodata, zero, negative and NaN pixels are stored in a lossless mask and come back as nodata."""

    RATE = "RATE"
    OPTIMISE = "OPTIMISE"
    POST_FILTER = "POST_FILTER"

    BANDS = "BANDS"
    BAND_INPUT = BandInput(INPUT_KINDS)
    FIGURES = (
        Figure("BPP", "Bits per pixel"),
        Figure("BYTES", "File size (bytes)"),
        Figure("N_EXCEPTIONS", "Bright pixels above the model's range, coded apart", "exceptions"),
        Figure("EXCEPTION_BYTES", "Bytes of the bright pixels (part of the file size)"),
        Figure("DARK_PIXELS", "Dark pixels below the model's floor, coded at the floor"),
    )

    def add_parameters(self) -> None:
        self.rates = rate_options()
        self.add_band_input(self.BAND_INPUT, default_band=None)  # not set: every band
        default_rate = self.rates.index("r2") if "r2" in self.rates else 0
        self.add_enum(self.RATE, "Rate", self.rates, default=default_rate)
        self.add_onnx_file(self.MODEL, "Custom encoder model")
        self.addParameter(as_advanced(QgsProcessingParameterBoolean(
            self.OPTIMISE, self.tr("Optimised (rate-distortion) quantisation"), defaultValue=False)))
        self.addParameter(as_advanced(QgsProcessingParameterBoolean(
            self.POST_FILTER, self.tr("Restoration filter (fitted to this scene; slower encoding)"),
            defaultValue=True)))
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT, self.tr("Compressed file"),
                                                  fileFilter="SAR Toolbox compressed (*.sarz)")
        )
        self.add_outputs(QgsProcessingOutputString,
                         [(self.BANDS, "Coded bands (band, description, bytes, bpp)")])

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        source, band, kind = values.band_input(self.BAND_INPUT)  # band 0: not set, every band
        rate = values.enum(self.RATE, self.rates)
        model = values.optional_file(self.MODEL)
        optimise = values.boolean(self.OPTIMISE)
        post_filter = values.boolean(self.POST_FILTER)
        output = values.file_output(self.OUTPUT)
        if not output:
            raise QgsProcessingException("OUTPUT: choose a file name for the compressed file.")

        from ..engine.codec.encode import compress_raster  # lazy: pulls in rasterio, onnxruntime

        result = compress_raster(source, output, band=band or None, input_kind=kind, rate=rate,
                                 encoder_path=model, rdo=optimise, post_filter=post_filter,
                                 **engine_callbacks(feedback))
        bands = "; ".join(f"{f.label}: {f.bytes} bytes, {f.bpp:.4f} bpp" for f in result.bands)
        return {**self.outputs({self.OUTPUT: output}, result), self.BANDS: bands}
