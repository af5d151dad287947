"""Environment report behind sartoolbox:checkenvironment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.setup import environment, install
from engine.setup.environment import environment_report, report_html, report_lines, write_report

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_report_lists_versions_providers_and_models(identity_model: Path, tmp_path: Path) -> None:
    shutil.copy(identity_model, tmp_path / "identity.onnx")
    (tmp_path / "identity-v1.md").write_text("# card")  # cards are named after the model id
    (tmp_path / "broken.onnx").write_text("not onnx")
    report = environment_report(models_dir=tmp_path, host={"QGIS": "3.22.0"})
    json.dumps(report)  # serialisable
    assert report["packages"]["numpy"]["version"] and report["missing"] == []
    assert report["install_command"] is None
    assert report["packages"]["numpy"]["required"] == "numpy>=1.24,<2"
    assert report["gdal"]["rasterio"]
    assert "CPUExecutionProvider" in report["execution_providers"]["available"]
    assert report["execution_providers"]["selected"][-1] == "CPUExecutionProvider"
    models = {m["file"]: m for m in report["models"]}
    identity = models["identity.onnx"]
    assert identity["task"] == "identity" and identity["card"] == "identity-v1.md"
    assert "not a valid ONNX model" in models["broken.onnx"]["error"]
    lines = report_lines(report)
    assert lines[0] == "QGIS 3.22.0"
    assert any(line.startswith("numpy: ") for line in lines)
    assert any("identity-v1 (identity)" in line and "card identity-v1.md" in line for line in lines)
    assert any("UNUSABLE" in line for line in lines)


def test_shipped_codecs_have_their_rate_point_card_and_the_report_stays_short() -> None:
    """Finding 15.6: every shipped model had 'card MISSING'; the HTML page was 6.9 MB of entropy tables."""
    report = environment_report()
    models = report["models"]
    assert {m["file"] for m in models} >= {"sarcodec-r1-encoder.onnx", "sarcodec-r1-decoder.onnx"}
    for model in models:
        assert "error" not in model, model
        assert model["card"] is not None and (REPO_ROOT / "models" / model["card"]).is_file(), model
        assert set(model) == {"file", "bytes", "model_id", "task", "schema_version", "tile_size",
                              "overlap", "weights_sha256", "card"}
    assert next(m for m in models if m["file"] == "sarcodec-r2-decoder.onnx")["card"] == "sarcodec-r2.md"
    page = report_html(report)
    assert len(page) < 10_000 and len(json.dumps(report)) < 20_000
    assert "MISSING" not in page and "entropy" not in page


def test_missing_packages_get_one_pinned_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = environment._distribution_version
    gone = {"constriction", "scikit-image"}
    monkeypatch.setattr(environment, "_distribution_version",
                        lambda name: None if name in gone else real(name))
    report = environment_report(models_dir=tmp_path)
    assert report["missing"] == ["constriction>=0.4,<0.6", "scikit-image>=0.22,<0.26"]
    command = report["install_command"]
    assert command == (f"{environment.python_executable()} -m pip install{_flags()} "
                       "'constriction>=0.4,<0.6' 'scikit-image>=0.22,<0.26'")
    lines = report_lines(report)
    assert "constriction: MISSING (needs constriction>=0.4,<0.6)" in lines
    assert f"Install everything missing with: {command}" in lines
    assert report["models"] == []


def test_install_command_pins_known_packages() -> None:
    command = environment.install_command("constriction", "GDAL (osgeo)")
    assert command.endswith(f"install{_flags()} 'constriction>=0.4,<0.6' 'GDAL (osgeo)'")


def _flags() -> str:
    return " --user --break-system-packages" if install.externally_managed() else ""


@pytest.mark.parametrize("suffix", [".json", ".html", ".txt"])
def test_write_report_by_suffix(tmp_path: Path, suffix: str) -> None:
    report = environment_report(models_dir=tmp_path, host={"QGIS": "3.22.0"})
    path = write_report(tmp_path / f"env{suffix}", report)
    text = path.read_text()
    if suffix == ".json":
        assert json.loads(text)["host"] == {"QGIS": "3.22.0"}
    elif suffix == ".html":
        assert text.startswith("<!DOCTYPE html>") and "<li>QGIS 3.22.0</li>" in text
    else:
        assert text.splitlines() == report_lines(report)
    assert [p.name for p in tmp_path.iterdir()] == [f"env{suffix}"]


def test_without_onnxruntime_the_models_share_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Finding 24.13: the onnxruntime line was repeated once per bundled model (15 times)."""
    from engine import runtime
    from engine.errors import DependencyError

    def no_onnxruntime() -> None:
        raise DependencyError("onnxruntime", "Running ONNX models")

    monkeypatch.setattr(runtime, "_onnxruntime", no_onnxruntime)
    for name in ("a.onnx", "b.onnx", "c.onnx"):
        (tmp_path / name).write_bytes(b"")
    lines = report_lines(environment_report(models_dir=tmp_path))
    about_models = [line for line in lines if "UNUSABLE" in line]
    assert len(about_models) == 1
    assert about_models[0].startswith("3 models (a.onnx, b.onnx, c.onnx): UNUSABLE")
    message = str(DependencyError("onnxruntime", "Running ONNX models"))
    assert sum(message in line for line in lines) == 1


def test_the_report_always_gives_the_command_that_installs_every_plugin_package(tmp_path: Path) -> None:
    """Finding 24.12: one command from the plugin's own requirements file, printed by checkenvironment."""
    report = environment_report(models_dir=tmp_path)
    command = report["requirements_command"]
    assert command == install.install_requirements_command()
    assert command.endswith(f"-r {REPO_ROOT / 'requirements' / 'plugin.txt'}")
    assert f"Install or update every package the plugin needs with: {command}" in report_lines(report)
