"""Write the shipped graphical models (``sar_toolbox_plugin/graphical_models/*.model3``).

The models can be edited in QGIS's graphical modeler; this script is how they were made, so a
change of an algorithm's parameters is made here and the files rewritten:

    PATH=/usr/bin:$PATH QT_QPA_PLATFORM=offscreen /usr/bin/python3 -m scripts.build_graphical_models

Models:
- ``coregisterandcompress``: INPUT (SAR), REFERENCE, RATE -> co-register INPUT onto REFERENCE
  (``sartoolbox:coregister``, global shift written into the geotransform), then compress the
  corrected raster (``sartoolbox:compress``) -> OUTPUT (.sarz).
- ``compressandassess``: INPUT (SAR), INPUT_KIND, RATE -> compress (OUTPUT, .sarz), then measure
  the file against the original (``sartoolbox:compressionquality``) -> REPORT (HTML) and figures.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.preprocess import INPUT_KINDS

logger = logging.getLogger("scripts.build_graphical_models")

FOLDER = Path(__file__).resolve().parents[1] / "sar_toolbox_plugin" / "graphical_models"
RATES = ["r1", "r2", "r3"]
KINDS = list(INPUT_KINDS)  # the order of the compress algorithm's INPUT_KIND choices
GROUP, GROUP_ID = "Workflows", "workflows"


def _qgis() -> Any:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    return app


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


def _choice(name: str, label: str, options: list[str], default: int) -> Any:
    from qgis.core import QgsProcessingParameterEnum

    return QgsProcessingParameterEnum(name, label, options=options, defaultValue=default)


def _child(alg_id: str, child_id: str, sources: dict[str, Any], outputs: dict[str, str]) -> Any:
    """A child algorithm; ``outputs`` maps the child's output names to the model's output names."""
    from qgis.core import QgsProcessingModelChildAlgorithm, QgsProcessingModelOutput

    child = QgsProcessingModelChildAlgorithm(alg_id)
    child.setChildId(child_id)
    child.setDescription(child_id)
    for name, source in sources.items():
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


def _model(name: str, display: str, help_text: str, parameters: Sequence[Any],
           children: Sequence[Any]) -> Any:
    from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingModelParameter

    model = QgsProcessingModelAlgorithm(name, GROUP, GROUP_ID)
    for definition in parameters:
        model.addModelParameter(definition, QgsProcessingModelParameter(definition.name()))
    for child in children:
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
         _choice("RATE", "Rate", RATES, default=1)],
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
        [_raster("INPUT", "SAR raster"), _choice("INPUT_KIND", "Values are", KINDS, default=0),
         _choice("RATE", "Rate", RATES, default=1)],
        [_child("sartoolbox:compress", "compress",
                {"INPUT": _param("INPUT"), "INPUT_KIND": _param("INPUT_KIND"), "RATE": _param("RATE")},
                {"OUTPUT": "OUTPUT"}),
         _child("sartoolbox:compressionquality", "quality",
                {"REFERENCE": _param("INPUT"), "REFERENCE_KIND": _param("INPUT_KIND"),
                 "INPUT": _output_of("compress", "OUTPUT")}, {"OUTPUT_HTML": "REPORT"})],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write every model into :data:`FOLDER`."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app = _qgis()
    FOLDER.mkdir(exist_ok=True)
    for build in (coregister_and_compress, compress_and_assess):
        model = build()
        path = FOLDER / f"{model.name()}.model3"
        if not model.toFile(str(path)):
            raise SystemExit(f"could not write {path}")
        logger.info("wrote %s", path)
    app.exitQgis()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
