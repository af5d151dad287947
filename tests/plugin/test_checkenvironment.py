"""``sartoolbox:checkenvironment`` through processing.run: figures, log lines and report files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def test_report_figures_log_and_json_file(
    tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]], recording_feedback: Callable[[], Any]
) -> None:
    import onnxruntime
    import rasterio
    from qgis.core import Qgis

    feedback = recording_feedback()
    report_path = tmp_path / "environment.json"
    result = run_algorithm("checkenvironment", {"OUTPUT": str(report_path)}, feedback=feedback)

    assert result["QGIS_VERSION"] == Qgis.QGIS_VERSION
    assert result["NUMPY_VERSION"] == np.__version__
    assert result["RASTERIO_VERSION"] == rasterio.__version__
    assert result["ONNXRUNTIME_VERSION"] == onnxruntime.__version__
    assert result["ONNX_PROVIDER"] in onnxruntime.get_available_providers()
    assert result["GDAL_VERSION"]
    assert Path(result["OUTPUT"]) == report_path

    report = json.loads(report_path.read_text())
    assert report["host"]["QGIS"] == Qgis.QGIS_VERSION
    assert report["packages"]["numpy"]["version"] == np.__version__
    assert report["missing"] == list(filter(None, result["MISSING"].split(", ")))
    log = "\n".join(feedback.lines)
    assert f"QGIS {Qgis.QGIS_VERSION}" in log and f"numpy: {np.__version__}" in log
    assert result["ONNX_PROVIDER"] in log
    assert [p.name for p in tmp_path.iterdir()] == ["environment.json"]  # no temporary file left


def test_html_report_and_no_file_by_default(
    tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]]
) -> None:
    page = tmp_path / "environment.html"
    run_algorithm("checkenvironment", {"OUTPUT": str(page)})
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "SAR Toolbox environment" in text and "numpy" in text
    assert len(text) < 10_000 and "card sarcodec-r1.md" in text and "MISSING" not in text

    result = run_algorithm("checkenvironment", {})
    assert "OUTPUT" not in result or not result["OUTPUT"]
    assert result["ONNX_PROVIDER"]


def test_unwritable_report_path(tmp_path: Path, run_algorithm: Callable[..., dict[str, Any]]) -> None:
    from qgis.core import QgsProcessingException

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(QgsProcessingException, match=r"(?i)cannot write .*report\.json"):
        run_algorithm("checkenvironment", {"OUTPUT": str(blocker / "report.json")})
    assert blocker.read_text() == "x"
