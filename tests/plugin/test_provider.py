"""The provider and its algorithms: ids, help, groups, standard parameters, lazy heavy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"checkenvironment", "todb", "syntheticscene"}


def test_provider_registers_the_three_algorithms(sar_provider: Any) -> None:
    from qgis.core import QgsApplication

    assert sar_provider.id() == "sartoolbox"
    assert sar_provider.name() == "SAR Toolbox"
    registry = QgsApplication.processingRegistry()
    ids = {
        alg.id() for alg in registry.algorithms() if alg.provider() and alg.provider().id() == "sartoolbox"
    }
    assert {f"sartoolbox:{name}" for name in EXPECTED} <= ids
    assert sar_provider.supportedOutputRasterLayerExtensions() == ["tif"]


def test_every_algorithm_is_grouped_and_modeler_ready(sar_provider: Any) -> None:
    """Holds for every algorithm of the provider, including those added later."""
    from qgis.core import QgsProcessingAlgorithm

    from sar_toolbox_plugin.graphical_models import GraphicalModelAlgorithm

    problems: list[str] = []
    for alg in sar_provider.algorithms():
        name = alg.name()
        if not (alg.displayName() and alg.group() and alg.groupId() and alg.shortHelpString()):
            problems.append(f"{name}: display name, group, group id and short help are required")
        if not alg.flags() & QgsProcessingAlgorithm.FlagSupportsBatch:
            problems.append(f"{name}: not available in batch mode")
        if alg.flags() & QgsProcessingAlgorithm.FlagHideFromModeler:
            problems.append(f"{name}: hidden from the modeler")
        for parameter in alg.parameterDefinitions():
            # Standard parameter classes only: what the modeler and batch mode know how to handle.
            if not type(parameter).__module__.startswith("qgis."):
                problems.append(f"{name}: {parameter.name()} is a custom parameter type {type(parameter)}")
            # Parameter names are class constants (models and scripts refer to them by name); a shipped
            # graphical model's names are its model inputs, fixed in its .model3 file.
            if isinstance(alg, GraphicalModelAlgorithm):
                continue
            if getattr(type(alg), parameter.name(), None) != parameter.name():
                problems.append(f"{name}: parameter {parameter.name()} is not a class constant")
    assert not problems, "\n".join(problems)
    assert {alg.name() for alg in sar_provider.algorithms()} >= EXPECTED


def test_every_algorithm_help_explains_each_parameter(sar_provider: Any) -> None:
    """The short help names every parameter, by its label (as in the dialog) or its name."""
    problems: list[str] = []
    for alg in sar_provider.algorithms():
        help_text = alg.shortHelpString().lower()
        for parameter in alg.parameterDefinitions():
            label = parameter.description().split(" (")[0].lower()
            if label not in help_text and parameter.name().lower() not in help_text:
                problems.append(
                    f"{alg.name()}: help does not explain parameter {parameter.name()} ('{label}')"
                )
    assert not problems, "\n".join(problems)


def test_plugin_loads_without_rasterio_and_onnxruntime_and_names_the_package(tmp_path: Path) -> None:
    """Fresh interpreter, rasterio and onnxruntime unimportable: the provider loads, todb names rasterio."""
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"rasterio", "onnxruntime"}}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from qgis.core import (QgsApplication, QgsProcessingContext, QgsProcessingException,
                               QgsProcessingFeedback)
        app = QgsApplication([], False)
        app.initQgis()
        import sar_toolbox_plugin
        plugin = sar_toolbox_plugin.classFactory(None)
        plugin.initGui()  # what the QGIS GUI calls (qgis_process calls initProcessing)
        registry = QgsApplication.processingRegistry()
        provider = registry.providerById("sartoolbox")
        print("ALGORITHMS", sorted(a.name() for a in provider.algorithms()))
        print("WARNING", provider.warningMessage())
        print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in {{"rasterio", "onnxruntime"}}))
        alg = registry.createAlgorithmById("sartoolbox:todb")
        try:
            alg.run({{"INPUT": {str(tmp_path / "in.tif")!r}, "OUTPUT": {str(tmp_path / "out.tif")!r}}},
                    QgsProcessingContext(), QgsProcessingFeedback(), {{}}, False)
        except QgsProcessingException as exc:
            print("ERROR", str(exc).replace(chr(10), " "))
        plugin.unload()
        print("UNLOADED", registry.providerById("sartoolbox") is None)
        """
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:" + os.environ.get("PATH", "")}
    # A raster for INPUT so the run reaches the engine (written without rasterio).
    from osgeo import gdal

    gdal.GetDriverByName("GTiff").Create(str(tmp_path / "in.tif"), 4, 4, 1, gdal.GDT_Float32).FlushCache()
    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    out = completed.stdout
    assert completed.returncode == 0, out + completed.stderr
    loaded = out.split("ALGORITHMS ", 1)[1].splitlines()[0]
    assert all(f"'{name}'" in loaded for name in EXPECTED), loaded
    assert "HEAVY []" in out
    assert "WARNING" in out and "rasterio" in out.split("WARNING", 1)[1].splitlines()[0]
    error = out.split("ERROR ", 1)[1].splitlines()[0]
    assert "rasterio" in error and "pip install" in error, error
    assert "UNLOADED True" in out
    assert not (tmp_path / "out.tif").exists()


def test_metadata_is_complete_and_versions_agree() -> None:
    import configparser
    import tomllib

    import engine

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO_ROOT / "sar_toolbox_plugin" / "metadata.txt", encoding="utf-8")  # the symlink QGIS reads
    general = parser["general"]
    assert general["name"] == "SAR Toolbox"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert general["category"] == "Analysis"
    for key in ("description", "about", "author"):
        assert general[key].strip()
    from engine.setup.bundled import runtime_requirements

    assert all(r.distribution in general["about"] for r in runtime_requirements())  # finding 24.12
    assert "<" not in general["about"]  # the plugin manager shows it as HTML
    assert (REPO_ROOT / "sar_toolbox_plugin" / general["icon"]).is_file()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert general["version"] == engine.__version__
    # the distribution's version is metadata.txt's too (setup.py reads it; the wheel test checks the result)
    assert "version" not in project and "version" in project["dynamic"]


def test_no_parameter_with_a_default_is_demanded_and_defaults_are_in_the_help(sar_provider: Any) -> None:
    """Finding 15.8. qgis_process 3.22 reports a parameter left out as a missing mandatory one when it is
    not optional and its definition does not accept "no value" (BAND of compress did); the help lists each
    default; labels carry no "(optional)" (the dialog adds "[optional]" itself)."""
    from qgis.core import (
        QgsProcessingContext,
        QgsProcessingDestinationParameter,
        QgsProcessingParameterDefinition,
    )

    context = QgsProcessingContext()
    problems: list[str] = []
    for alg in sar_provider.algorithms():
        help_text = alg.shortHelpString()
        for parameter in alg.parameterDefinitions():
            name, default = parameter.name(), parameter.defaultValue()
            optional = bool(parameter.flags() & QgsProcessingParameterDefinition.FlagOptional)
            if default is not None and not optional and not parameter.checkValueIsAcceptable(None, context):
                problems.append(f"{alg.name()}: {name} has a default but qgis_process demands it")
            shown = isinstance(parameter, QgsProcessingDestinationParameter) or f"{name}=" in help_text
            if default is not None and not shown:
                problems.append(f"{alg.name()}: the help does not give the default of {name}")
            if "(optional)" in parameter.description().lower():
                problems.append(f"{alg.name()}: {name} label says '(optional)'; QGIS adds '[optional]'")
    assert not problems, "\n".join(problems)
    compress = next(a for a in sar_provider.algorithms() if a.name() == "compress")
    # compress codes every band when BAND is not set (issue 24.2)
    help_text = compress.shortHelpString()
    assert "not set by default: BAND" in help_text and "RATE=1 (r2 - balanced)" in help_text


def _bar_text(message: str) -> str:
    """``message`` as the algorithm dialog's message bar shows it (QgsMessageBar renders HTML)."""
    from qgis.core import Qgis
    from qgis.gui import QgsMessageBar
    from qgis.PyQt.QtWidgets import QTextBrowser

    bar = QgsMessageBar()
    bar.pushMessage(message, Qgis.Warning)
    return "".join(browser.toPlainText() for browser in bar.currentItem().findChildren(QTextBrowser))


def _log_text(message: str) -> str:
    """``message`` as the dialog's log shows it (reportError: escaped, then appended as HTML)."""
    import html

    from qgis.PyQt.QtWidgets import QTextEdit

    log = QTextEdit()
    log.append(f'<span style="color:red">{html.escape(message, quote=False)}</span>')
    return str(log.toPlainText())


def test_missing_package_warning_reads_right_in_the_bar_and_the_log(
    sar_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 24.10: the bar read "rasterio>=1.4,=2.4,=0.4": the pins' '<' were taken as HTML tags."""
    from engine.setup.install import install_requirements_command
    from sar_toolbox_plugin import provider

    gone = {"rasterio", "affine", "constriction", "onnxruntime"}
    monkeypatch.setattr(provider, "_installed", lambda module: module not in gone)
    message = sar_provider.warningMessage()
    command = install_requirements_command()
    assert "rasterio, affine, constriction, onnxruntime" in message and command in message
    assert _bar_text(message) == message
    assert _log_text(message) == message
    monkeypatch.setattr(provider, "_installed", lambda module: True)
    assert sar_provider.warningMessage() == ""
