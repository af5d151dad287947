"""``sartoolbox:coregister`` — SAR–optical / SAR–SAR co-registration (thin adapter over the engine)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingFeedback,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..engine.registration.outputs import RESAMPLING as RESAMPLING_METHODS
from ..engine.registration.shift import api as engine
from ..engine.registration.shift.fitting import MAX_ROTATION, MAX_SCALE_CHANGE
from .base import engine_callbacks
from .params import Figure, ParameterValues, as_advanced
from .registration import RegistrationAlgorithm


class CoregisterAlgorithm(RegistrationAlgorithm):
    """Co-register INPUT onto REFERENCE (``engine.registration.shift.coregister``)."""

    NAME = "coregister"
    DISPLAY_NAME = "Co-register raster (SAR–optical)"
    HELP = """Finds and corrects the misregistration of a raster against a reference (e.g. Sentinel-1 \
against Sentinel-2 or an orthophoto). The reference is resampled onto the input's grid if needed; both \
rasters need a CRS, or neither (then both are placed as QGIS shows them). A raster georeferenced by \
ground control points only (e.g. a Sentinel-1 GRD) is refused with the <i>gdalwarp</i> command that puts \
it on a map grid; <i>Keypoint registration</i> takes it as it is.

<b>Method</b>: <i>classical</i> correlates oriented-gradient features (CFOG/HOPC-style) over all shifts \
at once by FFT, coarse to fine, with sub-pixel refinement; <i>deep</i> runs the same search on a learned \
embedding (the bundled model, or <b>Embedding model</b>); <i>combined</i> (the default) stacks both in one \
search, so that a peak both agree on stands out: it answers more often, about 1.3 times slower than \
<i>deep</i>. Measured accuracy: docs/BENCHMARKS.md.
<b>Mode</b>: <i>global</i> = one shift for the scene; <i>local</i> = a grid of tie points (<b>Grid \
spacing</b>, <b>Window</b>) and a fitted <b>Transform</b> (shift, affine, 2nd or 3rd order polynomial).
<b>Maximum shift (m)</b>: how far to search, e.g. the geolocation error between the sensors; converted \
with the input's pixel size (at least 32 pixels; without a CRS the number counts pixels). \
<b>Maximum shift (pixels)</b>, when set, is used instead.
A match at the edge of the search or not clearly better than the next candidate is refused, and so is \
a fit with too few agreeing tie points or with more than the <b>Largest scale change of the fit</b> or \
the <b>Largest rotation of the fit</b> (advanced): the error says what to change. A refused fit still \
writes the <b>Tie points</b> (field <i>status</i>).
<b>Band</b> of the input and <b>Reference bands</b> (averaged; default: the mean of R, G, B) choose \
what is matched.
<b>Resample (warp) the output</b>: off = a shift or affine correction only changes the geotransform \
(pixels untouched); on (always for polynomials) = GDAL warps onto the input's grid with the chosen \
<b>Resampling</b>.
Optional outputs: tie points (GeoPackage), a Georeferencer GCP file (.points), a JSON report (reusable \
with 'Apply co-registration') and a before/after checkerboard (GeoTIFF; the <i>after</i> half lies on \
the input's footprint). The dialog proposes the tie points and the checkerboard as temporary layers \
(loaded, named after the input; <i>Skip output</i> leaves them out); scripts and qgis_process write them \
only when given a path.
<b>SHIFT_X / SHIFT_Y</b>: input pixels; positive = the input content moves right/down to match. \
<b>RMSE</b> of the fit (empty when no tie point is redundant) and <b>N_POINTS</b> used."""

    METHOD = "METHOD"
    MODE = "MODE"
    GRID_SPACING = "GRID_SPACING"
    WINDOW = "WINDOW"
    MAX_SHIFT_M = "MAX_SHIFT_M"
    MAX_SHIFT = "MAX_SHIFT"
    MAX_SCALE_CHANGE = "MAX_SCALE_CHANGE"
    MAX_ROTATION = "MAX_ROTATION"

    METHODS = engine.USER_METHODS
    MODES = engine.MODES
    TRANSFORMS = engine.TRANSFORMS
    RESAMPLINGS = RESAMPLING_METHODS
    FILE_OUTPUTS = (RegistrationAlgorithm.GCP_OUTPUT, RegistrationAlgorithm.REPORT_OUTPUT)
    FIGURES = (
        Figure("SHIFT_X", "Shift x (input pixels, + = right)"),
        Figure("SHIFT_Y", "Shift y (input pixels, + = down)"),
        Figure("RMSE", "RMSE after the fit (pixels; empty: not available)", "rmse_or_none"),
        Figure("N_POINTS", "Tie points used"),
        Figure("CONFIDENCE", "Confidence: peak distinctness (robust std above the next peak; global mode "
               "refuses below the calibrated threshold; empty: not measured)", "distinctness_or_none"),
    )

    def add_parameters(self) -> None:
        self._add_rasters()
        self.add_enum(self.METHOD, "Method", self.METHODS, default=self.METHODS.index(engine.DEFAULT_METHOD))
        self.add_onnx_file(self.MODEL, "Embedding model for METHOD=deep or combined", advanced=True)
        self.add_enum(self.MODE, "Mode", self.MODES)
        self._add_number(self.MAX_SHIFT_M, "Maximum shift (m)", engine.DEFAULT_MAX_SHIFT_M, 1.0, double=True)
        self._add_number(self.MAX_SHIFT, "Maximum shift (pixels; overrides metres)", None, 1, optional=True)
        self._add_number(self.GRID_SPACING, "Grid spacing (pixels, local)", 256, engine.MIN_GRID_SPACING)
        self._add_number(self.WINDOW, "Window (pixels, local)", 128, engine.MIN_WINDOW)
        self.add_enum(self.TRANSFORM, "Transform (local)", self.TRANSFORMS)
        self._add_number(self.MAX_SCALE_CHANGE, "Largest scale change of the fit (%)",
                         100 * MAX_SCALE_CHANGE, 0.01, double=True, advanced=True)  # fmt: skip
        self._add_number(self.MAX_ROTATION, "Largest rotation of the fit (degrees)", MAX_ROTATION, 0.01,
                         double=True, advanced=True)  # fmt: skip
        self.add_resample(self.RESAMPLINGS, advanced=True)
        self._add_outputs()

    def _add_rasters(self) -> None:
        self.add_raster_band(self.INPUT, self.BAND, ("Raster to correct", "Band of the raster to correct"))
        self.add_reference("Reference bands (averaged; default: mean of R, G, B)")

    def _add_number(
        self,
        name: str,
        label: str,
        default: float | None,
        minimum: float,
        double: bool = False,
        optional: bool = False,
        advanced: bool = False,
    ) -> None:
        kind = QgsProcessingParameterNumber.Double if double else QgsProcessingParameterNumber.Integer
        parameter = QgsProcessingParameterNumber(
            name, self.tr(label), kind, defaultValue=default, optional=optional, minValue=minimum
        )
        self.addParameter(as_advanced(parameter) if advanced else parameter)

    def _add_outputs(self) -> None:
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Corrected raster")))
        self.add_tiepoints_output(QgsProcessing.TypeVectorPoint)
        self.add_file_outputs(self.FILE_OUTPUTS)
        self.add_checkerboard_output()

    def _search(self, values: ParameterValues) -> dict[str, Any]:
        """MAX_SHIFT (pixels) when set, else MAX_SHIFT_M."""
        return {
            "max_shift": values.integer(self.MAX_SHIFT) if values.is_set(self.MAX_SHIFT) else None,
            "max_shift_m": values.number(self.MAX_SHIFT_M),
        }

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..engine.registration.shift.fitting import FitLimits

        output = values.output_raster(self.OUTPUT)
        files = {
            self.TIEPOINTS: values.optional_destination(self.TIEPOINTS, ".gpkg"),
            self.CHECKERBOARD: values.optional_destination(self.CHECKERBOARD, ".tif"),
            **values.file_outputs(self.FILE_OUTPUTS),
        }
        self.name_registration_layers(values, {self.OUTPUT: output, **files}, "co-registered")
        limits = FitLimits(
            max_scale_change=values.number(self.MAX_SCALE_CHANGE) / 100,
            max_rotation=values.number(self.MAX_ROTATION),
        )
        result = engine.coregister(
            values.raster(self.INPUT),
            values.raster(self.REFERENCE),
            method=values.enum(self.METHOD, self.METHODS),
            model_path=values.optional_file(self.MODEL),
            mode=values.enum(self.MODE, self.MODES),
            grid_spacing=values.integer(self.GRID_SPACING),
            window=values.integer(self.WINDOW),
            transform=values.enum(self.TRANSFORM, self.TRANSFORMS),
            resample=values.boolean(self.RESAMPLE),
            resampling=values.enum(self.RESAMPLING, self.RESAMPLINGS),
            input_band=values.integer(self.BAND) or None,
            reference_bands=values.integers(self.REFERENCE_BANDS) or None,
            limits=limits,
            output_path=output,
            tiepoints_path=files[self.TIEPOINTS],
            gcp_path=files[self.GCP_FILE],
            report_path=files[self.REPORT],
            checkerboard_path=files[self.CHECKERBOARD],
            **self._search(values),
            **engine_callbacks(feedback),
        )
        return self.outputs({self.OUTPUT: output, **files}, result)
