"""``sartoolbox:checkenvironment`` — what the toolbox runs on, and what is missing."""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qgis.core import (
    Qgis,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
)

from .base import SarAlgorithm

HELP = """Reports the environment the SAR Toolbox runs in, and how to fix what is missing.

Lists the versions of QGIS, Python, numpy, onnxruntime, rasterio and GDAL, the ONNX Runtime \
execution providers that are available and the one that will be used (CUDA when present, CPU \
otherwise), the GPU name if any, and the bundled models with their metadata. For every missing \
package it gives the exact install command. Every line is written to the Processing log.

<b>Report file</b> (optional): also save the report; a path ending in .html gives a readable page, \
any other path (e.g. .json) the report as JSON.

Outputs (text, usable by later steps of a model): QGIS_VERSION, ONNX_PROVIDER (the execution provider \
that will run the models, e.g. CPUExecutionProvider), ONNXRUNTIME_VERSION, RASTERIO_VERSION, \
NUMPY_VERSION, GDAL_VERSION, GPU (empty when none) and MISSING (missing packages, empty when none)."""

#: Figures returned as outputs (usable by later steps of a model).
FIGURES = (
    "QGIS_VERSION",
    "ONNX_PROVIDER",
    "ONNXRUNTIME_VERSION",
    "RASTERIO_VERSION",
    "NUMPY_VERSION",
    "GDAL_VERSION",
    "GPU",
    "MISSING",
)


class CheckEnvironmentAlgorithm(SarAlgorithm):
    """Environment report (a thin adapter over ``engine.environment.environment_report``)."""

    OUTPUT = "OUTPUT"
    QGIS_VERSION = "QGIS_VERSION"
    ONNX_PROVIDER = "ONNX_PROVIDER"
    ONNXRUNTIME_VERSION = "ONNXRUNTIME_VERSION"
    RASTERIO_VERSION = "RASTERIO_VERSION"
    NUMPY_VERSION = "NUMPY_VERSION"
    GDAL_VERSION = "GDAL_VERSION"
    GPU = "GPU"
    MISSING = "MISSING"

    NAME = "checkenvironment"
    DISPLAY_NAME = "Check environment"
    GROUP = "Tools"
    GROUP_ID = "tools"
    HELP = HELP

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT,
                self.tr("Report file"),
                fileFilter="JSON files (*.json);;HTML files (*.html)",
                optional=True,
                createByDefault=False,
            )
        )
        labels = {
            self.QGIS_VERSION: "QGIS version",
            self.ONNX_PROVIDER: "ONNX execution provider used",
            self.ONNXRUNTIME_VERSION: "onnxruntime version",
            self.RASTERIO_VERSION: "rasterio version",
            self.NUMPY_VERSION: "numpy version",
            self.GDAL_VERSION: "GDAL version",
            self.GPU: "GPU",
            self.MISSING: "Missing packages",
        }
        self.add_outputs(QgsProcessingOutputString, ((name, labels[name]) for name in FIGURES))

    def execute(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        from ..engine.environment import environment_report, format_report

        report = {"qgis": {"version": Qgis.QGIS_VERSION}, **environment_report()}
        summary = [f"QGIS {Qgis.QGIS_VERSION}", *format_report(report)]
        for line in summary:
            feedback.pushInfo(line)

        results: dict[str, Any] = figures(report)
        path = self.optional_file_output(parameters, self.OUTPUT, context)
        if path:
            write_report(Path(path), report, summary)
            results[self.OUTPUT] = path
        return results


def figures(report: dict[str, Any]) -> dict[str, str]:
    """The scalar outputs, read from the engine's report ("" when unknown or absent)."""
    packages = report.get("packages", {})
    selected = report.get("execution_providers", {}).get("selected") or []
    gdal = report.get("gdal", {})
    gpus = report.get("gpu") or []
    return {
        "QGIS_VERSION": str(report.get("qgis", {}).get("version", "")),
        "ONNX_PROVIDER": str(selected[0]) if selected else "",
        "ONNXRUNTIME_VERSION": packages.get("onnxruntime", {}).get("version") or "",
        "RASTERIO_VERSION": packages.get("rasterio", {}).get("version") or "",
        "NUMPY_VERSION": packages.get("numpy", {}).get("version") or "",
        "GDAL_VERSION": gdal.get("osgeo") or gdal.get("rasterio") or "",
        "GPU": ", ".join(str(gpu.get("name", "")) for gpu in gpus),
        "MISSING": ", ".join(sorted(report.get("missing", {}))),
    }


def report_lines(node: Any, indent: int = 0) -> Iterator[str]:
    """The report as indented ``key: value`` lines."""
    pad = "  " * indent
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list) and value:
                yield f"{pad}{key}:"
                yield from report_lines(value, indent + 1)
            else:
                yield f"{pad}{key}: {_text(value)}"
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                yield f"{pad}-"
                yield from report_lines(item, indent + 1)
            else:
                yield f"{pad}- {_text(item)}"
    else:
        yield f"{pad}{_text(node)}"


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        return "none"
    return str(value)


def render_html(report: dict[str, Any], summary: list[str]) -> str:
    """A small self-contained HTML page: the summary lines, then every detail of the report."""
    items = "\n".join(f"<li>{html.escape(line)}</li>" for line in summary)
    details = html.escape("\n".join(report_lines(report)))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>SAR Toolbox environment</title></head>\n"
        f"<body>\n<h1>SAR Toolbox environment</h1>\n<ul>\n{items}\n</ul>\n"
        f"<h2>Details</h2>\n<pre>{details}</pre>\n</body></html>\n"
    )


def write_report(path: Path, report: dict[str, Any], summary: list[str]) -> None:
    """Write the report as HTML (``.html``/``.htm``) or JSON, atomically."""
    if path.suffix.lower() in {".html", ".htm"}:
        text = render_html(report, summary)
    else:
        text = json.dumps(report, indent=2, default=str) + "\n"
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise QgsProcessingException(
            f"Cannot write the report to '{path}' ({exc.strerror}). Choose another file."
        ) from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
