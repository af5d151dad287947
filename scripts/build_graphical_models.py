"""Write the shipped graphical models (``sar_toolbox_plugin/graphical_models/*.model3``).

The models can be edited in QGIS's graphical modeler; this script is how they were made, so a
change of an algorithm's parameters is made here and the files rewritten:

    PATH=/usr/bin:$PATH QT_QPA_PLATFORM=offscreen .venv/bin/python -m scripts.build_graphical_models

The child algorithms are read from the registered ``sartoolbox`` provider: the model inputs that
stand for a child's parameter (RATE, INPUT_KIND) are copies of that parameter's definition (same
choices, same default), and every other parameter a child declares is set to its default, so the
models validate in the modeler ("Parameter X is mandatory" otherwise) and follow the code. The
components are laid out as the modeler places them, with more room: inputs in a row, each algorithm
below and to the right of the previous one, its outputs beside it.

Models:
- ``coregisterandcompress``: INPUT (SAR), REFERENCE, RATE -> co-register INPUT onto REFERENCE
  (``sartoolbox:coregister``, global shift written into the geotransform), then compress the
  corrected raster (``sartoolbox:compress``) -> OUTPUT (.sarz).
- ``compressandassess``: INPUT (SAR), INPUT_KIND, RATE -> compress (OUTPUT, .sarz), then measure
  the file against the original (``sartoolbox:compressionquality``) -> REPORT (HTML) and figures.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("scripts.build_graphical_models")

FOLDER = Path(__file__).resolve().parents[1] / "sar_toolbox_plugin" / "graphical_models"
GROUP, GROUP_ID = "Workflows", "workflows"
#: Layout (component centres, in scene units): the modeler's box width and column spacing, rows far
#: enough apart for an algorithm's parameter links to pass its predecessor's outputs.
MARGIN, STEP_X, STEP_Y, INPUT_Y, OUTPUT_GAP = 120.0, 220.0, 160.0, 60.0, 60.0


def _algorithm(alg_id: str) -> Any:
    """The registered algorithm ``alg_id`` (the ``sartoolbox`` provider must be registered)."""
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById(alg_id)
    if algorithm is None:
        raise LookupError(f"{alg_id} is not registered: register the SAR Toolbox provider first.")
    return algorithm


def _param(name: str) -> Any:
    """A child's value taken from the model's input ``name``."""
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    return Source.fromModelParameter(name)


def _output_of(child_id: str, output: str) -> Any:
    """A child's value taken from the output ``output`` of the child ``child_id``."""
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    return Source.fromChildOutput(child_id, output)


def _raster(name: str, label: str) -> Any:
    from qgis.core import QgsProcessingParameterRasterLayer

    return QgsProcessingParameterRasterLayer(name, label)


def _input_like(alg_id: str, parameter: str, label: str) -> Any:
    """A model input that is a copy of the child parameter ``parameter`` of ``alg_id`` (its choices and
    default), under the same name."""
    definition = _algorithm(alg_id).parameterDefinition(parameter).clone()
    definition.setDescription(label)
    return definition


def _defaults(alg_id: str, sources: dict[str, Any]) -> dict[str, Any]:
    """``sources`` plus a static default for every other input parameter of ``alg_id`` that has one.

    A mandatory parameter with neither a source nor a default cannot be filled: LookupError.
    """
    from qgis.core import QgsProcessingModelChildParameterSource as Source
    from qgis.core import QgsProcessingParameterDefinition as Definition

    filled = dict(sources)
    for definition in _algorithm(alg_id).parameterDefinitions():
        name = definition.name()
        if name in filled or definition.isDestination():
            continue
        if definition.defaultValue() is not None:
            filled[name] = Source.fromStaticValue(definition.defaultValue())
        elif not definition.flags() & Definition.FlagOptional:
            raise LookupError(f"{alg_id}: the model gives no value for the mandatory parameter {name}.")
    return filled


def _child(alg_id: str, child_id: str, sources: dict[str, Any], outputs: dict[str, str]) -> Any:
    """A child algorithm; ``outputs`` maps the child's output names to the model's output names."""
    from qgis.core import QgsProcessingModelChildAlgorithm, QgsProcessingModelOutput

    child = QgsProcessingModelChildAlgorithm(alg_id)
    child.setChildId(child_id)
    child.setDescription(child_id)
    for name, source in _defaults(alg_id, sources).items():
        child.addParameterSources(name, [source])
    model_outputs = {}
    for child_output, model_output in outputs.items():
        out = QgsProcessingModelOutput(model_output, model_output)
        out.setChildId(child_id)
        out.setChildOutputName(child_output)
        out.setDescription(model_output)
        model_outputs[model_output] = out
    child.setModelOutputs(model_outputs)
    return child


def _place(component: Any, x: float, y: float) -> None:
    """Centre ``component`` on (x, y), its (empty) comment above right, as the modeler does."""
    from qgis.PyQt.QtCore import QPointF

    component.setPosition(QPointF(x, y))
    size = component.size()
    component.comment().setPosition(QPointF(x + size.width(), y - 1.5 * size.height()))


def _model(name: str, display: str, help_text: str, parameters: Sequence[Any],
           children: Sequence[Any]) -> Any:
    """The model: ``parameters`` (inputs, in a row at the top, in this order), then ``children``
    (each below and right of the one before, its outputs to its right; give them in the order they
    run)."""
    from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingModelParameter

    model = QgsProcessingModelAlgorithm(name, GROUP, GROUP_ID)
    for column, definition in enumerate(parameters):
        component = QgsProcessingModelParameter(definition.name())
        component.setDescription(definition.name())
        _place(component, MARGIN + STEP_X * column, INPUT_Y)
        model.addModelParameter(definition, component)
    for row, child in enumerate(children, start=1):
        x, y = MARGIN + STEP_X * (row - 1), INPUT_Y + STEP_Y * row + 20.0
        _place(child, x, y)
        outputs = child.modelOutputs()
        for index, output in enumerate(outputs.values()):
            _place(output, x + child.size().width() + OUTPUT_GAP, y + 1.5 * child.size().height() * index)
        child.setModelOutputs(outputs)
        model.addChildAlgorithm(child)
    model.updateDestinationParameters()
    model.setHelpContent({"ALG_DESC": help_text, "SAR_DISPLAY_NAME": display, "ALG_CREATOR": "SAR Toolbox"})
    return model


def coregister_and_compress() -> Any:
    """INPUT, REFERENCE, RATE -> OUTPUT (.sarz of the co-registered SAR)."""
    return _model(
        "coregisterandcompress", "Co-register and compress",
        "Co-registers the SAR raster (INPUT) onto the reference (REFERENCE) with the default global "
        "co-registration (the measured shift is written into the geotransform, pixels are not resampled), "
        "then compresses the corrected raster with the learned codec at RATE into OUTPUT (.sarz). "
        "INPUT is read as intensity, band 1. Use the two algorithms separately for other settings.",
        [_raster("INPUT", "SAR raster (intensity)"), _raster("REFERENCE", "Reference raster"),
         _input_like("sartoolbox:compress", "RATE", "Rate")],
        [_child("sartoolbox:coregister", "coregister",
                {"INPUT": _param("INPUT"), "REFERENCE": _param("REFERENCE")}, {}),
         _child("sartoolbox:compress", "compress",
                {"INPUT": _output_of("coregister", "OUTPUT"), "RATE": _param("RATE")}, {"OUTPUT": "OUTPUT"})],
    )


def compress_and_assess() -> Any:
    """INPUT, INPUT_KIND, RATE -> OUTPUT (.sarz) and REPORT (HTML) with PSNR, SSIM, ENL ratio, EPI, bpp."""
    return _model(
        "compressandassess", "Compress and assess quality",
        "Compresses band 1 of the SAR raster (INPUT, holding INPUT_KIND values) at RATE into OUTPUT (.sarz), "
        "then measures the file against the original: PSNR and SSIM in dB, ENL ratio, EPI and the real bits "
        "per pixel, with an HTML report (REPORT). Check a rate on a typical scene before archiving many.",
        [_raster("INPUT", "SAR raster"), _input_like("sartoolbox:compress", "INPUT_KIND", "Values are"),
         _input_like("sartoolbox:compress", "RATE", "Rate")],
        [_child("sartoolbox:compress", "compress",
                {"INPUT": _param("INPUT"), "INPUT_KIND": _param("INPUT_KIND"), "RATE": _param("RATE")},
                {"OUTPUT": "OUTPUT"}),
         _child("sartoolbox:compressionquality", "quality",
                {"REFERENCE": _param("INPUT"), "REFERENCE_KIND": _param("INPUT_KIND"),
                 "INPUT": _output_of("compress", "OUTPUT")}, {"OUTPUT_HTML": "REPORT"})],
    )


#: Every shipped model, by the function that builds it.
BUILDERS: tuple[Callable[[], Any], ...] = (coregister_and_compress, compress_and_assess)


def write_models(folder: Path) -> list[Path]:
    """Build every model (the provider must be registered) and write it to ``folder``; the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for build in BUILDERS:
        model = build()
        path = folder / f"{model.name()}.model3"
        if not model.toFile(str(path)):
            raise OSError(f"could not write {path}")
        logger.info("wrote %s", path)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Register the provider in a headless QGIS and write every model (into :data:`FOLDER` by default)."""
    from qgis.core import QgsApplication

    from sar_toolbox_plugin.provider import SarToolboxProvider

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=FOLDER, help="folder of the .model3 files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app = QgsApplication([], False)
    app.initQgis()
    provider = SarToolboxProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    try:
        write_models(args.output_dir)
    finally:
        QgsApplication.processingRegistry().removeProvider(provider)
        app.exitQgis()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
