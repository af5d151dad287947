"""Environment report behind sartoolbox:checkenvironment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine import environment
from engine.environment import environment_report, format_report


def test_report_lists_versions_providers_and_models(identity_model: Path, tmp_path: Path) -> None:
    shutil.copy(identity_model, tmp_path / "identity.onnx")
    (tmp_path / "identity.md").write_text("# card")
    (tmp_path / "broken.onnx").write_text("not onnx")
    report = environment_report(models_dir=tmp_path)
    json.dumps(report)  # serialisable
    assert report["packages"]["numpy"]["version"] and report["packages"]["rasterio"]["install"] is None
    assert report["gdal"]["rasterio"]
    assert "CPUExecutionProvider" in report["execution_providers"]["available"]
    assert report["execution_providers"]["selected"][-1] == "CPUExecutionProvider"
    models = {m["file"]: m for m in report["models"]}
    assert models["identity.onnx"]["metadata"]["task"] == "identity" and models["identity.onnx"]["model_card"]
    assert "not a valid ONNX model" in models["broken.onnx"]["error"]
    lines = format_report(report)
    assert any(line.startswith("numpy: ") for line in lines)
    assert any("identity-v1 (identity)" in line for line in lines)
    assert any("UNUSABLE" in line for line in lines)


def test_missing_package_gets_an_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = environment._distribution_version
    monkeypatch.setattr(environment, "_distribution_version",
                        lambda name: None if name == "constriction" else real(name))
    report = environment_report(models_dir=tmp_path)
    command = report["missing"]["constriction"]
    assert "-m pip install 'constriction" in command and command.startswith("/")
    assert any("constriction: MISSING" in line for line in format_report(report))
    assert report["models"] == []
