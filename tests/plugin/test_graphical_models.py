"""The shipped ``.model3`` files as the Graphical Modeler opens them: valid, laid out, up to date."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO_ROOT / "sar_toolbox_plugin" / "graphical_models").glob("*.model3"))


def _load(path: Path) -> Any:
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(path)), f"{path} does not load"
    return model


def _components(model: Any) -> dict[str, Any]:
    """Every box the modeler draws (inputs, algorithms, outputs), by a readable name."""
    boxes = {f"input {name}": c for name, c in model.parameterComponents().items()}
    for child_id, child in model.childAlgorithms().items():
        boxes[f"algorithm {child_id}"] = child
        boxes.update({f"output {name}": out for name, out in child.modelOutputs().items()})
    return boxes


def test_the_plugin_ships_two_models() -> None:
    assert [p.stem for p in SHIPPED] == ["compressandassess", "coregisterandcompress"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_model_is_valid_as_the_modeler_checks_it(path: Path, sar_provider: Any) -> None:
    """Finding 24.9: "Parameter INPUT_KIND is mandatory" ... on every algorithm box (red in the modeler)."""
    model = _load(path)
    problems = {child_id: model.validateChildAlgorithm(child_id) for child_id in model.childAlgorithms()}
    assert all(ok for ok, _ in problems.values()), problems
    assert model.validate() == (True, [])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_model_boxes_do_not_overlap(path: Path) -> None:
    """Finding 24.9: every component at (0, 0), on top of each other."""
    from qgis.PyQt.QtCore import QRectF

    boxes = {}
    for name, component in _components(_load(path)).items():
        size = component.size()
        centre = component.position()
        boxes[name] = QRectF(centre.x() - size.width() / 2, centre.y() - size.height() / 2,
                             size.width(), size.height())
    assert len(boxes) >= 5
    pairs = itertools.combinations(boxes.items(), 2)
    assert not [(a, b) for (a, ra), (b, rb) in pairs if ra.intersects(rb)]
    assert all(r.left() >= 0 and r.top() >= 0 for r in boxes.values()), boxes


def test_model_inputs_offer_the_compress_algorithm_choices(sar_provider: Any) -> None:
    """RATE and INPUT_KIND of the models are the compress algorithm's own (no copied list)."""
    from qgis.core import QgsApplication

    compress = QgsApplication.processingRegistry().algorithmById("sartoolbox:compress")
    for path in SHIPPED:
        model = _load(path)
        for name in ("RATE", "INPUT_KIND"):
            definition = model.parameterDefinition(name)
            if definition is None:
                continue
            expected = compress.parameterDefinition(name)
            assert (definition.options(), definition.defaultValue()) == (
                expected.options(), expected.defaultValue()), f"{path.stem}: {name}"


def _canonical(path: Path) -> str:
    """The model file as C14N XML (Qt writes XML attributes in a per-process random order)."""
    root = ET.fromstring(path.read_text(encoding="utf-8").split("\n", 1)[1])  # past <!DOCTYPE model>
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


def test_shipped_models_are_what_the_build_script_writes(tmp_path: Path, sar_provider: Any) -> None:
    """A changed algorithm (a new RATE, a new parameter) needs `python -m scripts.build_graphical_models`."""
    from scripts.build_graphical_models import write_models

    written = write_models(tmp_path)
    assert sorted(p.name for p in written) == [p.name for p in SHIPPED]
    for path in written:
        shipped = REPO_ROOT / "sar_toolbox_plugin" / "graphical_models" / path.name
        assert _canonical(path) == _canonical(shipped), (
            f"{shipped.name} is stale: run PATH=/usr/bin:$PATH QT_QPA_PLATFORM=offscreen "
            ".venv/bin/python -m scripts.build_graphical_models")
