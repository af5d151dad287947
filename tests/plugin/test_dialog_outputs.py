"""What the Processing dialog does with the outputs (finding 24.13): layer names, the "Open output file"
boxes, the checkerboard loaded, "HTML output has been generated" only when an HTML file was written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture
def project() -> Iterator[Any]:
    from qgis.core import QgsProject

    project = QgsProject()
    yield project
    project.clear()


def _run(
    algorithm_id: str, parameters: dict[str, Any], project: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run as the dialog does: every layer output to a temporary file loaded into ``project``;
    (results, {layer output parameter: name of the layer QGIS loads})."""
    from qgis.core import (
        QgsApplication,
        QgsProcessing,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProcessingParameterRasterDestination,
        QgsProcessingParameterVectorDestination,
    )

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    layers = (QgsProcessingParameterRasterDestination, QgsProcessingParameterVectorDestination)
    for definition in algorithm.destinationParameterDefinitions():
        if isinstance(definition, layers) and definition.name() not in parameters:
            parameters[definition.name()] = QgsProcessingOutputLayerDefinition(QgsProcessing.TEMPORARY_OUTPUT,
                                                                               project)
    context = QgsProcessingContext()
    context.setProject(project)
    results, ok = algorithm.run(parameters, context, QgsProcessingFeedback(), {}, True)
    assert ok, results
    loads = context.layersToLoadOnCompletion()
    return results, {details.outputName: details.name for details in loads.values()}


def test_temporary_layers_are_named_after_their_input(
    tmp_path: Path, sar_provider: Any, project: Any, write_geotiff: Callable[..., Path]
) -> None:
    """They were "Output" for every run of todb."""
    rng = np.random.default_rng(3)
    names = set()
    for stem in ("S1A_VV", "S1B_VV"):
        scene = write_geotiff(tmp_path / f"{stem}.tif", rng.gamma(4.0, 0.05, (16, 16)).astype(np.float32))
        _, loaded = _run("sartoolbox:todb", {"INPUT": str(scene)}, project)
        names.add(loaded["OUTPUT"])
    assert names == {"S1A_VV (dB)", "S1B_VV (dB)"}
    _, loaded = _run("sartoolbox:syntheticscene", {"WIDTH": 32, "HEIGHT": 32, "SEED": 4}, project)
    assert loaded == {"OUTPUT_SAR": "synthetic SAR (seed 4)", "OUTPUT_OPTICAL": "synthetic optical (seed 4)"}


def test_coregister_loads_the_corrected_raster_tie_points_and_checkerboard(
    tmp_path: Path, sar_provider: Any, project: Any
) -> None:
    """The checkerboard was a plain file output (never loaded); the layers were "Corrected raster"."""
    from qgis.core import QgsRasterLayer

    from engine.synthetic import write_scene_pair

    files = write_scene_pair(tmp_path / "sar.tif", tmp_path / "opt.tif", width=160, height=160, seed=5,
                             shift_x=3.6, shift_y=-2.2)
    results, loaded = _run("sartoolbox:coregister",
                           {"INPUT": str(files.sar_path), "REFERENCE": str(files.optical_path)}, project)
    assert loaded == {"OUTPUT": "sar (co-registered)", "TIEPOINTS": "sar tie points",
                      "CHECKERBOARD": "sar before/after checkerboard"}
    checkerboard = QgsRasterLayer(results["CHECKERBOARD"])
    assert checkerboard.isValid() and checkerboard.bandCount() == 3


def test_every_layer_output_offers_an_enabled_open_output_box(sar_provider: Any) -> None:
    """The tie points' "Open output file after running algorithm" box was disabled: QGIS 3.22 leaves it
    disabled when a path is typed into an output that starts skipped."""
    from qgis.core import QgsProcessingContext
    from qgis.gui import QgsGui, QgsProcessingGui
    from qgis.PyQt.QtWidgets import QCheckBox, QLineEdit

    context = QgsProcessingContext()
    problems, boxes = [], 0
    for algorithm in sar_provider.algorithms():
        for definition in algorithm.destinationParameterDefinitions():
            wrapper = QgsGui.processingGuiRegistry().createParameterWidgetWrapper(definition,
                                                                                  QgsProcessingGui.Standard)
            widget = wrapper.createWrappedWidget(context)
            for edit in widget.findChildren(QLineEdit):
                edit.setText(f"/tmp/{definition.name()}.out")  # the user types a path
            for box in widget.findChildren(QCheckBox):
                boxes += 1
                if not box.isEnabled() or not box.isChecked():
                    problems.append(f"{algorithm.name()}: {definition.name()}")
    assert boxes >= 10 and not problems


def test_html_generated_message_only_after_an_html_report(tmp_path: Path, sar_provider: Any) -> None:
    """The dialog's "HTML output has been generated" appeared after checkenvironment without a report."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback

    dialog_algorithm = QgsApplication.processingRegistry().createAlgorithmById("sartoolbox:checkenvironment")
    expected = {None: False, "report.json": False, "report.html": True}
    for report, html in expected.items():
        parameters = {"OUTPUT": str(tmp_path / report)} if report else {}
        _, ok = dialog_algorithm.run(parameters, QgsProcessingContext(), QgsProcessingFeedback(), {}, True)
        assert ok
        assert dialog_algorithm.hasHtmlOutputs() is html, report  # what AlgorithmDialog.finish asks
