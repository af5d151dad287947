"""The algorithms chain in a graphical-modeler model: synthetic scene -> dB conversion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def test_model_chains_synthetic_scene_into_todb(
    tmp_path: Path, sar_provider: Any, read_geotiff: Callable[..., Any]
) -> None:
    import processing
    from qgis.core import (
        QgsProcessingFeedback,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
    )

    static = QgsProcessingModelChildParameterSource.fromStaticValue
    child_output = QgsProcessingModelChildParameterSource.fromChildOutput
    model = QgsProcessingModelAlgorithm("SAR demo", "Tests")

    scene = QgsProcessingModelChildAlgorithm("sartoolbox:syntheticscene")
    scene.setChildId("scene")
    for name, value in {"WIDTH": 40, "HEIGHT": 24, "SEED": 5, "LOOKS": 2}.items():
        scene.addParameterSources(name, [static(value)])
    model.addChildAlgorithm(scene)

    todb = QgsProcessingModelChildAlgorithm("sartoolbox:todb")
    todb.setChildId("todb")
    todb.addParameterSources("INPUT", [child_output("scene", "OUTPUT_SAR")])
    todb.addParameterSources("INPUT_KIND", [static(0)])
    output = QgsProcessingModelOutput("sigma0_db")
    output.setChildId("todb")
    output.setChildOutputName("OUTPUT")
    todb.setModelOutputs({"sigma0_db": output})
    model.addChildAlgorithm(todb)
    model.updateDestinationParameters()
    assert set(model.dependentChildAlgorithms("scene")) == {"todb"}

    target = tmp_path / "sigma0_db.tif"
    result = processing.run(model, {"todb:sigma0_db": str(target)}, feedback=QgsProcessingFeedback())

    assert Path(result["todb:sigma0_db"]) == target
    db, info = read_geotiff(target)
    assert info["size"] == (24, 40)
    valid = db != info["nodata"]
    assert valid.mean() > 0.9 and np.all((db[valid] >= -40.0) & (db[valid] < 40.0))
