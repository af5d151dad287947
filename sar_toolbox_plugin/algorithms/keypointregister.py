"""``sartoolbox:keypointregister`` — keypoint registration under rotation and scale (thin adapter)."""

from __future__ import annotations

from math import isqrt
from typing import Any

from qgis.core import (
    QgsProcessingFeedback,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..engine.registration.keypoints.api import MAX_PIXELS
from ..engine.registration.keypoints.outputs import RESAMPLING_ORDER
from ..engine.registration.prepare import KINDS as IMAGE_KINDS
from ..engine.registration.transforms import MATRIX_KINDS as TRANSFORM_KINDS
from .base import engine_callbacks
from .params import Figure, FileOutput, ParameterValues
from .registration import RegistrationAlgorithm


class KeypointRegisterAlgorithm(RegistrationAlgorithm):
    """Register INPUT onto REFERENCE by keypoints (``engine.registration.keypoint_register``)."""

    NAME = "keypointregister"
    DISPLAY_NAME = "Register by keypoints (rotation and scale)"
    HELP = f"""Registers a raster onto a reference that may be rotated, scaled or seen in perspective \
(other orbit, sensor or resolution), by matching keypoints: SAR onto optical or SAR onto SAR.

<b>Raster to register</b> (INPUT, one <b>Band</b>) and <b>Reference raster</b> (REFERENCE; \
<b>Reference bands</b>, default all, are averaged into one grey image). The two are matched on their \
own pixel grids, so their georeferencing may be wrong or missing, or given by ground control points \
only (e.g. a Sentinel-1 GRD); when both have a CRS they must overlap on the ground. The registered \
raster gets the REFERENCE's georeferencing (its GCPs when it has only those); tie points and the GCP \
file are placed through the GCPs of a raster that has no geotransform.
<b>Keypoint model</b> (MODEL): empty = the classical method, no model needed: for two SAR images \
SAR-SIFT keypoints (ratio-of-means gradients of the linear intensity over seven scales, SAR-Harris, \
log-polar descriptors: made for independent speckle on the two sides; the fit is then sharpened by \
template matching of the same speckle-robust gradients, the last pass on a dense grid of small templates \
weighted by how well each matches), for optical-SAR a SAR-adapted \
Harris detector with rotated oriented-gradient histograms and a dense structural search (weaker); or \
a learned <i>keypoints</i> ONNX model of this toolbox.
Keypoints are found at several scales (nodata areas give none), at most \
<b>Maximum keypoints per image</b> (MAX_KEYPOINTS), matched as mutual nearest neighbours with a \
ratio test (optical-SAR: filtered by a second oriented-gradient descriptor), and fitted in two \
stages: a robust coarse fit, then a local search around the predicted positions and a RANSAC fit of the \
<b>Transform</b> (similarity, affine or homography). Folded, near-singular or too strongly scaled \
(outside 1/8 to 8) results are refused.
<b>Input values are</b> / <b>Reference values are</b> (advanced): auto, linear intensity or \
amplitude, dB, or optical; auto judges a sample of the values: negative or dB-spread values are \
dB (never optical), speckled ones linear SAR, a several-band or speckle-free reference optical.
Both images are read whole: each may have up to {MAX_PIXELS / 1e6:.1f} Mpix ({isqrt(MAX_PIXELS)} x \
{isqrt(MAX_PIXELS)} px, about 3.4 GB of memory; 0.9 GB at 2000 x 2000); larger ones are refused: crop \
or decimate them, or use coregister for large scenes.
Outputs: the INPUT resampled onto the REFERENCE grid (<b>Registered raster</b>, chosen \
<b>Resampling</b>), optional <b>Tie points</b> (GeoPackage; the dialog proposes a temporary layer, \
scripts write it only when given a path), a <b>Georeferencer GCP file</b> \
(GCP_FILE, .points, INPUT pixels to REFERENCE map coordinates), a <b>Matches</b> PNG (both images \
side by side, inlier matches drawn) and a JSON <b>Report</b> whose <i>pixel_transform</i> maps \
INPUT pixel coordinates (col, row) to REFERENCE pixel coordinates, (0, 0) = top-left corner of the \
first pixel.
Figures: N_KEYPOINTS (INPUT + REFERENCE), N_MATCHES, N_INLIERS, RMSE (inliers, reference pixels). \
Benchmark figures: docs/BENCHMARKS.md."""

    MAX_KEYPOINTS = "MAX_KEYPOINTS"
    REFERENCE_KIND = "REFERENCE_KIND"
    MATCHES_PNG = "MATCHES_PNG"

    TRANSFORMS = TRANSFORM_KINDS
    RESAMPLINGS = tuple(RESAMPLING_ORDER)
    KINDS = ("auto", *IMAGE_KINDS)
    FILE_OUTPUTS = (
        RegistrationAlgorithm.GCP_OUTPUT,
        FileOutput(MATCHES_PNG, "Matches", ".png", "PNG"),
        RegistrationAlgorithm.REPORT_OUTPUT,
    )
    FIGURES = (
        Figure("N_KEYPOINTS", "Keypoints (input + reference)"),
        Figure("N_MATCHES", "Putative matches"),
        Figure("N_INLIERS", "Inlier matches"),
        Figure("RMSE", "RMSE of the inliers (reference pixels)"),
    )

    def add_parameters(self) -> None:
        self.add_raster_band(self.INPUT, self.BAND, ("Raster to register", "Band"))
        self.add_reference("Reference bands (default: all, averaged)")
        self.add_onnx_file(self.MODEL, "Keypoint model (empty = classical)")
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_KEYPOINTS, self.tr("Maximum keypoints per image"), defaultValue=2000, minValue=16,
            maxValue=100000))
        self.add_enum(self.TRANSFORM, "Transform", self.TRANSFORMS, default=2)
        self.add_enum(self.RESAMPLING, "Resampling", self.RESAMPLINGS, default=1)
        for name, label in ((self.INPUT_KIND, "Input values are"),
                            (self.REFERENCE_KIND, "Reference values are")):
            self.add_enum(name, label, self.KINDS, advanced=True)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Registered raster")))
        self.add_tiepoints_output()
        self.add_file_outputs(self.FILE_OUTPUTS)

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        inp = values.raster(self.INPUT)
        ref = values.raster(self.REFERENCE)
        output = values.output_raster(self.OUTPUT)
        files = {
            self.TIEPOINTS: values.optional_destination(self.TIEPOINTS, ".gpkg"),
            **values.file_outputs(self.FILE_OUTPUTS),
        }
        self.name_registration_layers(values, {self.OUTPUT: output, **files}, "registered")

        from ..engine.registration.keypoints.api import keypoint_register  # lazy: pulls in rasterio/scipy

        result = keypoint_register(
            inp,
            ref,
            output_path=output,
            tiepoints_path=files[self.TIEPOINTS],
            gcp_path=files[self.GCP_FILE],
            matches_png_path=files[self.MATCHES_PNG],
            report_path=files[self.REPORT],
            band=values.integer(self.BAND),
            reference_bands=values.integers(self.REFERENCE_BANDS) or None,
            model_path=values.optional_file(self.MODEL),
            max_keypoints=values.integer(self.MAX_KEYPOINTS),
            transform=values.enum(self.TRANSFORM, self.TRANSFORMS),
            resampling=values.enum(self.RESAMPLING, self.RESAMPLINGS),
            input_kind=values.enum(self.INPUT_KIND, self.KINDS),
            reference_kind=values.enum(self.REFERENCE_KIND, self.KINDS),
            **engine_callbacks(feedback),
        )
        return self.outputs({self.OUTPUT: output, **files}, result)
