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

logger = logging.getLogger("scripts.build_graphical_models")

FOLDER = Path(__file__).resolve().parents[1] / "sar_toolbox_plugin" / "graphical_models"
RATES = ["r1", "r2", "r3"]
KINDS = ["intensity", "amplitude", "db"]
GROUP, GROUP_ID = "Workflows", "workflows"


def _qgis() -> Any:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    return app


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
    from qgis.core import QgsProcessingModelChildParameterSource as Source
    from qgis.core import QgsProcessingParameterEnum, QgsProcessingParameterRasterLayer

    param, child = Source.fromModelParameter, Source.fromChildOutput
    return _model(
        "coregisterandcompress", "Co-register and compress",
        "Co-registers the SAR raster (INPUT) onto the reference (REFERENCE) with the default global "
        "co-registration (the measured shift is written into the geotransform, pixels are not resampled), "
        "then compresses the corrected raster with the learned codec at RATE into OUTPUT (.sarz). "
        "INPUT is read as intensity, band 1. Use the two algorithms separately for other settings.",
        [QgsProcessingParameterRasterLayer("INPUT", "SAR raster (intensity)"),
         QgsProcessingParameterRasterLayer("REFERENCE", "Reference raster"),
         QgsProcessingParameterEnum("RATE", "Rate", options=RATES, defaultValue=1)],
        [_child("sartoolbox:coregister", "coregister",
                {"INPUT": param("INPUT"), "REFERENCE": param("REFERENCE")}, {}),
         _child("sartoolbox:compress", "compress",
                {"INPUT": child("coregister", "OUTPUT"), "RATE": param("RATE")}, {"OUTPUT": "OUTPUT"})],
    )


def compress_and_assess() -> Any:
    """INPUT, INPUT_KIND, RATE -> OUTPUT (.sarz) and REPORT (HTML) with PSNR, SSIM, ENL ratio, EPI, bpp."""
    from qgis.core import QgsProcessingModelChildParameterSource as Source
    from qgis.core import QgsProcessingParameterEnum, QgsProcessingParameterRasterLayer

    param, child = Source.fromModelParameter, Source.fromChildOutput
    return _model(
        "compressandassess", "Compress and assess quality",
        "Compresses band 1 of the SAR raster (INPUT, holding INPUT_KIND values) at RATE into OUTPUT (.sarz), "
        "then measures the file against the original: PSNR and SSIM in dB, ENL ratio, EPI and the real bits "
        "per pixel, with an HTML report (REPORT). Check a rate on a typical scene before archiving many.",
        [QgsProcessingParameterRasterLayer("INPUT", "SAR raster"),
         QgsProcessingParameterEnum("INPUT_KIND", "Values are", options=KINDS, defaultValue=0),
         QgsProcessingParameterEnum("RATE", "Rate", options=RATES, defaultValue=1)],
        [_child("sartoolbox:compress", "compress",
                {"INPUT": param("INPUT"), "INPUT_KIND": param("INPUT_KIND"), "RATE": param("RATE")},
                {"OUTPUT": "OUTPUT"}),
         _child("sartoolbox:compressionquality", "quality",
                {"REFERENCE": param("INPUT"), "REFERENCE_KIND": param("INPUT_KIND"),
                 "INPUT": child("compress", "OUTPUT")}, {"OUTPUT_HTML": "REPORT"})],
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
