"""``sartoolbox:coregister`` — SAR–optical / SAR–SAR co-registration (thin adapter over the engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import SarAlgorithm, engine_callbacks

HELP = """Finds and corrects the misregistration of a raster against a reference (e.g. Sentinel-1 \
against Sentinel-2 or an orthophoto).

<b>Raster to correct</b> (INPUT) and <b>Reference raster</b> (REFERENCE): if the reference has another CRS \
or pixel size it is resampled onto the input's grid first; both need a CRS, or neither.
<b>Method</b>: <i>classical</i> correlates dense oriented-gradient features (CFOG/HOPC-style, robust to \
the SAR/optical difference) over all shifts at once by FFT, coarse to fine, with sub-pixel refinement; \
<i>deep</i> runs the same search on the bundled learned model, which starts from the same \
oriented-gradient channels and adds a correction learned on SAR/optical pairs: in the project's \
benchmarks it is more robust in small windows (local mode) and more precise at the CFOG check points \
and on synthetic pairs, not ahead of <i>classical</i> in global mode on real pairs (held-out Sentinel-1, \
OSdataset); about 3 x slower (docs/BENCHMARKS.md).
<b>Mode</b>: <i>global</i> estimates one shift for the scene; <i>local</i> measures a grid of tie points \
and fits a transform. <b>Grid spacing</b>, <b>Window</b> (local mode) and <b>Maximum shift</b> (pixels \
searched in each direction) set the grid. Nodata areas never give tie points; outliers are rejected \
with RANSAC.
<b>Transform</b> (local mode): shift, affine, 2nd or 3rd order polynomial.
<b>Resample (warp) the output</b>: off = a shift or affine correction only changes the geotransform of \
the <b>Corrected raster</b> (pixels untouched); on (and always for polynomials) = GDAL warps onto the \
input's grid with the chosen <b>Resampling</b>.
Optional outputs: <b>Tie points</b> (GeoPackage: dx, dy, reliability, residual, used), a QGIS \
<b>Georeferencer GCP file</b> (.points), a JSON <b>Report</b> (reusable with 'Apply co-registration') \
and a <b>Before/after checkerboard</b> PNG.
<b>SHIFT_X / SHIFT_Y</b>: pixels of INPUT; positive = the INPUT content must move right/down to match; \
<b>RMSE</b> of the fit and <b>N_POINTS</b> used are returned too."""


class CoregisterAlgorithm(SarAlgorithm):
    """Co-register INPUT onto REFERENCE (``engine.coregistration.coregister``)."""

    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    METHOD = "METHOD"
    MODE = "MODE"
    GRID_SPACING = "GRID_SPACING"
    WINDOW = "WINDOW"
    MAX_SHIFT = "MAX_SHIFT"
    TRANSFORM = "TRANSFORM"
    RESAMPLE = "RESAMPLE"
    RESAMPLING = "RESAMPLING"
    OUTPUT = "OUTPUT"
    TIEPOINTS = "TIEPOINTS"
    GCP_FILE = "GCP_FILE"
    REPORT = "REPORT"
    CHECKERBOARD = "CHECKERBOARD"
    SHIFT_X = "SHIFT_X"
    SHIFT_Y = "SHIFT_Y"
    RMSE = "RMSE"
    N_POINTS = "N_POINTS"

    METHODS = ("deep", "classical")
    MODES = ("global", "local")
    TRANSFORMS = ("shift", "affine", "poly2", "poly3")
    RESAMPLINGS = ("nearest", "bilinear", "cubic", "lanczos")

    NAME = "coregister"
    DISPLAY_NAME = "Co-register raster (SAR–optical)"
    GROUP = "Co-registration"
    GROUP_ID = "coregistration"
    HELP = HELP

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Raster to correct")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE, self.tr("Reference raster")))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD, self.tr("Method"), options=list(self.METHODS), defaultValue=1
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.MODE, self.tr("Mode"), options=list(self.MODES), defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.GRID_SPACING,
                self.tr("Grid spacing (pixels, local)"),
                defaultValue=256,
                minValue=8,
                maxValue=100000,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.WINDOW, self.tr("Window (pixels, local)"), defaultValue=128, minValue=32, maxValue=4096
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_SHIFT, self.tr("Maximum shift (pixels)"), defaultValue=32, minValue=1, maxValue=2048
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.TRANSFORM, self.tr("Transform (local)"), options=list(self.TRANSFORMS), defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.RESAMPLE, self.tr("Resample (warp) the output"), defaultValue=False
            )
        )
        resampling = QgsProcessingParameterEnum(
            self.RESAMPLING, self.tr("Resampling"), options=list(self.RESAMPLINGS), defaultValue=1
        )
        resampling.setFlags(resampling.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(resampling)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Corrected raster")))
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.TIEPOINTS, self.tr("Tie points"), optional=True, createByDefault=False
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.GCP_FILE,
                self.tr("Georeferencer GCP file"),
                fileFilter="GCP points (*.points)",
                optional=True,
                createByDefault=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.REPORT,
                self.tr("Report"),
                fileFilter="JSON (*.json)",
                optional=True,
                createByDefault=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.CHECKERBOARD,
                self.tr("Before/after checkerboard"),
                fileFilter="PNG (*.png)",
                optional=True,
                createByDefault=False,
            )
        )
        self.addOutput(QgsProcessingOutputNumber(self.SHIFT_X, self.tr("Shift x (input pixels, + = right)")))
        self.addOutput(QgsProcessingOutputNumber(self.SHIFT_Y, self.tr("Shift y (input pixels, + = down)")))
        self.addOutput(QgsProcessingOutputNumber(self.RMSE, self.tr("RMSE after the fit (pixels)")))
        self.addOutput(QgsProcessingOutputNumber(self.N_POINTS, self.tr("Tie points used")))

    def _optional_file(
        self, parameters: dict[str, Any], name: str, context: QgsProcessingContext, suffix: str
    ) -> str | None:
        value = parameters.get(name)
        if value is None or value == "":
            return None
        path = self.parameterAsFileOutput(parameters, name, context)
        if not path:
            return None
        return path if Path(path).suffix.lower() == suffix else str(Path(path).with_suffix(suffix))

    def execute(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        inp = self.raster_path(parameters, self.INPUT, context)
        ref = self.raster_path(parameters, self.REFERENCE, context)
        output = self.output_raster_path(parameters, self.OUTPUT, context)
        tiepoints = None
        if parameters.get(self.TIEPOINTS):
            tiepoints = self.parameterAsOutputLayer(parameters, self.TIEPOINTS, context) or None
            if tiepoints is not None and Path(tiepoints).suffix.lower() != ".gpkg":
                tiepoints = str(Path(tiepoints).with_suffix(".gpkg"))
        gcp = self._optional_file(parameters, self.GCP_FILE, context, ".points")
        report = self._optional_file(parameters, self.REPORT, context, ".json")
        checker = self._optional_file(parameters, self.CHECKERBOARD, context, ".png")

        from ..engine.coregistration.api import coregister  # lazy: pulls in rasterio/scipy

        result = coregister(
            inp,
            ref,
            method=self.METHODS[self.parameterAsEnum(parameters, self.METHOD, context)],
            mode=self.MODES[self.parameterAsEnum(parameters, self.MODE, context)],
            grid_spacing=self.parameterAsInt(parameters, self.GRID_SPACING, context),
            window=self.parameterAsInt(parameters, self.WINDOW, context),
            max_shift=self.parameterAsInt(parameters, self.MAX_SHIFT, context),
            transform=self.TRANSFORMS[self.parameterAsEnum(parameters, self.TRANSFORM, context)],
            resample=self.parameterAsBoolean(parameters, self.RESAMPLE, context),
            resampling=self.RESAMPLINGS[self.parameterAsEnum(parameters, self.RESAMPLING, context)],
            output_path=output,
            tiepoints_path=tiepoints,
            gcp_path=gcp,
            report_path=report,
            checkerboard_path=checker,
            **engine_callbacks(feedback),
        )
        out: dict[str, Any] = {
            self.OUTPUT: output,
            self.SHIFT_X: result.shift_x,
            self.SHIFT_Y: result.shift_y,
            self.RMSE: result.rmse,
            self.N_POINTS: result.n_points,
        }
        for key, path in (
            (self.TIEPOINTS, tiepoints),
            (self.GCP_FILE, gcp),
            (self.REPORT, report),
            (self.CHECKERBOARD, checker),
        ):
            if path is not None:
                out[key] = path
        return out
