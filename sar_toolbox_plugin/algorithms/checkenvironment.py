"""``sartoolbox:checkenvironment`` — what the toolbox runs on, and what is missing."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    Qgis,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
)

from .base import TOOLS, SarAlgorithm
from .params import ParameterValues

#: Figures returned as text outputs (usable by later steps of a model): name and label.
FIGURES = (
    ("QGIS_VERSION", "QGIS version"),
    ("ONNX_PROVIDER", "ONNX execution provider used"),
    ("ONNXRUNTIME_VERSION", "onnxruntime version"),
    ("RASTERIO_VERSION", "rasterio version"),
    ("NUMPY_VERSION", "numpy version"),
    ("GDAL_VERSION", "GDAL version"),
    ("GPU", "GPU"),
    ("MISSING", "Missing packages"),
)


class CheckEnvironmentAlgorithm(SarAlgorithm):
    """Environment report (a thin adapter over ``engine.setup.environment.environment_report``)."""

    NAME = "checkenvironment"
    DISPLAY_NAME = "Check environment"
    GROUP = TOOLS
    HELP = """Reports the environment the SAR Toolbox runs in, and how to fix what is missing.

Lists the versions of QGIS, Python, numpy, onnxruntime, rasterio and GDAL, the ONNX Runtime \
execution providers that are available and the one that will be used (CUDA when present, CPU \
otherwise), the GPU name if any, and one line per bundled model (id, task, metadata schema version, \
weights SHA-256, model card). For the packages that are missing it gives one pinned install command. \
Every line is written to the Processing log.

<b>Report file</b> (optional, none by default): also save the report; a path ending in .html gives a \
short readable page, .txt the same lines as text, any other path (e.g. .json) the report as JSON.

Outputs (text, usable by later steps of a model): QGIS_VERSION, ONNX_PROVIDER (the execution provider \
that will run the models, e.g. CPUExecutionProvider), ONNXRUNTIME_VERSION, RASTERIO_VERSION, \
NUMPY_VERSION, GDAL_VERSION, GPU (empty when none) and MISSING (missing packages, empty when none)."""

    def add_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT,
                self.tr("Report file"),
                fileFilter="HTML files (*.html);;Text files (*.txt);;JSON files (*.json)",
                optional=True,
                createByDefault=False,
            )
        )
        self.add_outputs(QgsProcessingOutputString, FIGURES)

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..engine.setup.environment import environment_report, report_lines, write_report

        path = values.optional_file_output(self.OUTPUT)
        report = environment_report(host={"QGIS": Qgis.QGIS_VERSION})
        for line in report_lines(report):
            feedback.pushInfo(line)
        results: dict[str, Any] = figures(report)
        if path:
            results[self.OUTPUT] = str(write_report(path, report))
        return results


def figures(report: dict[str, Any]) -> dict[str, str]:
    """The scalar outputs, read from the engine's report ("" when unknown or absent)."""
    packages = report.get("packages", {})
    selected = report.get("execution_providers", {}).get("selected") or []
    gdal = report.get("gdal", {})
    gpus = report.get("gpu") or []
    return {
        "QGIS_VERSION": str(report.get("host", {}).get("QGIS", "")),
        "ONNX_PROVIDER": str(selected[0]) if selected else "",
        "ONNXRUNTIME_VERSION": packages.get("onnxruntime", {}).get("version") or "",
        "RASTERIO_VERSION": packages.get("rasterio", {}).get("version") or "",
        "NUMPY_VERSION": packages.get("numpy", {}).get("version") or "",
        "GDAL_VERSION": gdal.get("osgeo") or gdal.get("rasterio") or "",
        "GPU": ", ".join(str(gpu.get("name", "")) for gpu in gpus),
        "MISSING": ", ".join(report.get("missing", [])),
    }
