"""``sartoolbox:syntheticscene`` — a seeded, georeferenced synthetic SAR/optical scene pair."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterCrs,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..engine.synthetic import MAX_SIZE, MIN_SIZE
from .base import DATA, SarAlgorithm, engine_callbacks
from .params import ParameterValues


class SyntheticSceneAlgorithm(SarAlgorithm):
    """Demo-data generator (a thin adapter over ``engine.synthetic.write_scene_pair``)."""

    NAME = "syntheticscene"
    DISPLAY_NAME = "Synthetic SAR/optical scene"
    GROUP = DATA
    HELP = """Generates a synthetic, georeferenced SAR/optical scene pair for demos, tests and training.

A procedural land-cover layout (crop parcels, forest, river and lake, roads, urban blocks with \
building heights) is rendered twice: an optical image and a C-band-like SAR image with per-class dB \
statistics, layover, double bounce and radar shadow, and fully developed speckle. The SAR content is \
shifted by a known amount, so the pair can be used to check co-registration.

<b>Width / Height</b>: scene size in pixels (16 to 20000).
<b>Pixel size</b>: ground size of one pixel in metres (statistics are calibrated at 10 m).
<b>CRS</b>: coordinate reference system of both outputs; must be projected in metres (e.g. a UTM \
zone); EPSG:32631 when not set. The top-left corner is at (500000, 5000000) in that CRS.
<b>Seed</b>: the same seed and parameters always give the same scene.
<b>Looks</b>: number of looks L of the speckle (Gamma law, may be fractional); 1 = single look, \
higher = smoother.
<b>Shift X / Shift Y</b>: known misregistration of the SAR content, in pixels (sub-pixel allowed, at \
most a quarter of the smaller side). Positive X moves the SAR content east (right, +column), positive \
Y south (down, +row): sar[row, col] = aligned[row − shift_y, col − shift_x]. Both files share the same \
geotransform; the misregistration lives in the content only.
<b>SAR output</b>: one float32 band, σ0 intensity (linear). <b>Optical output</b>: four float32 \
bands, red, green, blue, NIR reflectance (0–1). Both carry the truth (seed, looks, shift) as JSON in \
the SAR_TOOLBOX_SYNTHETIC metadata tag."""

    WIDTH = "WIDTH"
    HEIGHT = "HEIGHT"
    PIXEL_SIZE = "PIXEL_SIZE"
    CRS = "CRS"
    SEED = "SEED"
    LOOKS = "LOOKS"
    SHIFT_X = "SHIFT_X"
    SHIFT_Y = "SHIFT_Y"
    OUTPUT_SAR = "OUTPUT_SAR"
    OUTPUT_OPTICAL = "OUTPUT_OPTICAL"

    DEFAULT_CRS = "EPSG:32631"
    #: Widest shift the dialog offers; the engine allows a quarter of the smaller side and says so.
    MAX_SHIFT = MAX_SIZE / 4

    def add_parameters(self) -> None:
        integer = QgsProcessingParameterNumber.Integer
        double = QgsProcessingParameterNumber.Double
        self.addParameter(
            QgsProcessingParameterNumber(
                self.WIDTH, self.tr("Width (pixels)"), integer, 512, False, MIN_SIZE, MAX_SIZE
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.HEIGHT, self.tr("Height (pixels)"), integer, 512, False, MIN_SIZE, MAX_SIZE
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.PIXEL_SIZE, self.tr("Pixel size (CRS units)"), double, 10.0, False, 0.1, 1000.0
            )
        )
        # Optional so that qgis_process 3.22 takes the default when CRS is left out.
        self.addParameter(
            QgsProcessingParameterCrs(self.CRS, self.tr("CRS"), self.DEFAULT_CRS, optional=True)
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.SEED, self.tr("Seed"), integer, 0, False, 0, 2**31 - 1)
        )
        self.addParameter(
            QgsProcessingParameterNumber(self.LOOKS, self.tr("Looks"), double, 4.0, False, 1.0, 1000.0)
        )
        for name, label in ((self.SHIFT_X, "Shift X (pixels)"), (self.SHIFT_Y, "Shift Y (pixels)")):
            self.addParameter(
                QgsProcessingParameterNumber(
                    name, self.tr(label), double, 0.0, False, -self.MAX_SHIFT, self.MAX_SHIFT
                )
            )
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_SAR, self.tr("SAR output")))
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT_OPTICAL, self.tr("Optical output"))
        )

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        crs = values.crs(self.CRS)
        sar_path = values.output_raster(self.OUTPUT_SAR)
        optical_path = values.output_raster(self.OUTPUT_OPTICAL)
        seed = values.integer(self.SEED)
        values.name_output_layer(sar_path, f"synthetic SAR (seed {seed})")
        values.name_output_layer(optical_path, f"synthetic optical (seed {seed})")

        from ..engine.synthetic import write_scene_pair  # lazy: pulls in rasterio

        write_scene_pair(
            sar_path,
            optical_path,
            width=values.integer(self.WIDTH),
            height=values.integer(self.HEIGHT),
            pixel_size=values.number(self.PIXEL_SIZE),
            crs=crs_argument(crs),
            seed=seed,
            looks=values.number(self.LOOKS),
            shift_x=values.number(self.SHIFT_X),
            shift_y=values.number(self.SHIFT_Y),
            **engine_callbacks(feedback),
        )
        return self.outputs({self.OUTPUT_SAR: sar_path, self.OUTPUT_OPTICAL: optical_path})


def crs_argument(crs: QgsCoordinateReferenceSystem) -> str:
    """The CRS as the engine takes it: its authority id when it has one, else WKT."""
    if not crs.isValid():
        raise QgsProcessingException("CRS: choose a valid coordinate reference system, e.g. EPSG:32631.")
    return crs.authid() or crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED)
