"""``sartoolbox:compress`` — learned compression of a SAR raster's bands into one ``.sarz`` file."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
)

from ..engine.preprocess import INPUT_KINDS
from .base import COMPRESSION, SarAlgorithm, engine_callbacks
from .params import BandInput, Figure, ParameterValues, as_advanced


def rate_options() -> list[str]:
    """The RATE options in their fixed order (indices are what scripts and graphical models pass: RATE=1
    is r2), each with its quality word or, for a retired point, the point it runs."""
    from ..engine.codec.rate_choice import RATE_OPTIONS, rate_label

    return [rate_label(rate) for rate in RATE_OPTIONS]


def quality_options() -> list[str]:
    """The QUALITY options: first 'use Rate' (the default), then the quality words, most bits first."""
    from ..engine.codec.rate_choice import QUALITY_NAMES

    return [USE_RATE, *QUALITY_NAMES]


USE_RATE = "as Rate says"


class CompressAlgorithm(SarAlgorithm):
    """Thin adapter over ``engine.codec.target.compress_choice``."""

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
<b>Quality</b>: what you want, in words; overrides Rate. Typical figures on real SAR (validation \
images, not the benchmark's; ENL ratio far above 1 means speckle smoothed away, EPI near 1 means edges \
kept):
{QUALITY_TABLE}
(measured with <i>{MEASURE_COMMAND}</i>; a scene's own figures vary with its content, by about a factor \
of two in bits per pixel).
<b>Rate</b>: the rate point by name, when Quality is left at <i>as Rate says</i>. The option order is kept \
for scripts and graphical models (RATE=0..5: r1, r2, r3, h1, h4, h5); h5 is retired (beaten on the \
rate-distortion curve) and runs h1, with a deprecation message in the log.
<b>Target bits per pixel</b> / <b>Target PSNR</b> (optional, one of them; overrides Quality and Rate): the \
codec picks the rate point for this scene: the one with the most bits whose file stays within the bits per \
pixel (per coded band), or the one with the fewest bits whose PSNR, as <i>Compression quality</i> measures \
it (dB, peak = the band's dB range; with several bands the lowest), reaches the target. It starts from the \
table above and encodes the scene again with the next point when this scene misses the target (or could \
afford more), so it may take two or three encodings (a PSNR target also decodes each one); the log says \
what each gave. When no point meets the target, the closest is kept, with a warning.
<b>Custom encoder</b>: optional encoder .onnx exported by the SAR Toolbox training package (overrides \
the target, Quality and Rate); its decoder must be available when decompressing.
<b>Optimised quantisation</b> (advanced, off by default): latents are rounded towards zero where that \
saves more bits than it costs in squared error (rate-distortion optimised, settings shipped with the model). \
Files get much smaller for a smaller loss in PSNR, but speckle in homogeneous areas is smoothed (ENL rises). \
With a restoration filter, the filter may also differ by decoded value (up to 8 classes), \
which adds PSNR and smooths more. Leave it off when speckle statistics matter. It applies to r1, r2 and \
r3 only (h1 and h4 code with a hyperprior), and not with a target.
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
    QUALITY = "QUALITY"
    TARGET_BPP = "TARGET_BPP"
    TARGET_PSNR = "TARGET_PSNR"
    MODEL_ID = "MODEL_ID"
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
        from ..engine.codec.rate_choice import DEFAULT_RATE, RATE_OPTIONS

        self.rates = rate_options()
        self.qualities = quality_options()
        self.add_band_input(self.BAND_INPUT, default_band=None)  # not set: every band
        self.add_enum(self.QUALITY, "Quality (overrides Rate)", self.qualities)
        self.add_enum(self.RATE, "Rate", self.rates, default=RATE_OPTIONS.index(DEFAULT_RATE))
        for name, label in ((self.TARGET_BPP, "Target size: at most this many bits per pixel"),
                            (self.TARGET_PSNR, "Target quality: at least this PSNR (dB)")):
            self.addParameter(QgsProcessingParameterNumber(
                name, self.tr(f"{label} (optional; overrides Quality and Rate)"),
                QgsProcessingParameterNumber.Double, optional=True, minValue=0.0))
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
                         [(self.BANDS, "Coded bands (band, description, bytes, bpp)"),
                          (self.MODEL_ID, "Codec model used")])

    def shortHelpString(self) -> str:
        """The help with the quality table filled in from the committed measurement."""
        from ..engine.codec.rate_choice import choice_table
        from ..engine.codec.rate_points import MEASURE_COMMAND

        text = super().shortHelpString()
        return text.replace("{QUALITY_TABLE}", choice_table(html=False)).replace(
            "{MEASURE_COMMAND}", MEASURE_COMMAND)

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..engine.codec.rate_choice import RATE_OPTIONS

        source, band, kind = values.band_input(self.BAND_INPUT)  # band 0: not set, every band
        rate = RATE_OPTIONS[values.integer(self.RATE)]
        quality = values.enum(self.QUALITY, self.qualities)
        targets = {name: values.number(name) if values.is_set(name) else None
                   for name in (self.TARGET_BPP, self.TARGET_PSNR)}
        model = values.optional_file(self.MODEL)
        optimise = values.boolean(self.OPTIMISE)
        post_filter = values.boolean(self.POST_FILTER)
        output = values.file_output(self.OUTPUT)
        if not output:
            raise QgsProcessingException("OUTPUT: choose a file name for the compressed file.")

        from ..engine.codec.target import compress_choice  # lazy: pulls in rasterio, onnxruntime

        result = compress_choice(source, output, band=band or None, input_kind=kind, rate=rate,
                                 quality=None if quality == USE_RATE else quality,
                                 target_bpp=targets[self.TARGET_BPP], target_psnr=targets[self.TARGET_PSNR],
                                 encoder_path=model, rdo=optimise, post_filter=post_filter,
                                 **engine_callbacks(feedback))
        bands = "; ".join(f"{f.label}: {f.bytes} bytes, {f.bpp:.4f} bpp" for f in result.bands)
        return {**self.outputs({self.OUTPUT: output}, result), self.BANDS: bands,
                self.MODEL_ID: result.model_id}
