"""The shared algorithm base: error conversion and engine logging forwarded to the feedback."""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("input", "Band 9 does not exist; choose band 1."),
        ("dependency", "'onnxruntime'"),
        ("missing_module", "'rasterio'"),
        ("unexpected", "Unexpected error (ZeroDivisionError"),
    ],
)
def test_engine_errors_become_processing_exceptions(
    recording_feedback: Callable[[], Any], error: str, expected: str
) -> None:
    from qgis.core import QgsProcessingException

    from engine.errors import DependencyError, InputError
    from sar_toolbox_plugin.algorithms.base import engine_errors

    raised: dict[str, BaseException] = {
        "input": InputError("Band 9 does not exist; choose band 1."),
        "dependency": DependencyError("onnxruntime", "Running a model"),
        "missing_module": ModuleNotFoundError("No module named 'rasterio'", name="rasterio"),
        "unexpected": ZeroDivisionError("division by zero"),
    }
    feedback = recording_feedback()
    with pytest.raises(QgsProcessingException) as caught, engine_errors(feedback):
        raise raised[error]
    assert expected in str(caught.value)
    if error in ("dependency", "missing_module"):  # the exact pip command, not only the package name
        assert "-m pip install" in str(caught.value)
    if error == "unexpected":  # the traceback goes to the debug log for the bug report
        assert any(kind == "debug" and "ZeroDivisionError" in text for kind, text in feedback.messages)


def test_engine_messages_are_forwarded_once_and_levels_restored(
    recording_feedback: Callable[[], Any],
) -> None:
    from engine import errors
    from sar_toolbox_plugin.algorithms.base import engine_callbacks, forward_logging, forwarded_loggers

    engine_logger = logging.getLogger(errors.__name__.rsplit(".", 1)[0] + ".convert")
    before = [(logger.level, list(logger.handlers)) for logger in forwarded_loggers()]
    feedback = recording_feedback()
    with forward_logging(feedback):
        log = engine_callbacks(feedback)["log"]
        engine_logger.info("Converting band 1")  # the engine logs a message ...
        log("Converting band 1")  # ... and hands the same one to its log callback
        engine_logger.warning("Model runs on CPU")
        other = threading.Thread(target=engine_logger.warning, args=("From another algorithm's thread",))
        other.start()
        other.join()
        log("Only through the callback")
    engine_logger.warning("After the run")
    assert feedback.messages == [
        ("info", "Converting band 1"),
        ("warning", "Model runs on CPU"),
        ("info", "Only through the callback"),
    ]
    assert [(logger.level, list(logger.handlers)) for logger in forwarded_loggers()] == before


def test_the_plugin_runs_the_one_engine_of_the_test_run(qgis_app: Any) -> None:
    """tests/conftest.py makes ``sar_toolbox_plugin.engine`` the ``engine`` package: one copy of each
    class, so an engine error raised in a test is the plugin's own error class."""
    import engine.errors
    import engine.tiling
    from sar_toolbox_plugin.algorithms import base

    assert base.errors is engine.errors
    assert importlib.import_module("sar_toolbox_plugin.engine.tiling") is engine.tiling


@pytest.mark.parametrize(
    ("algorithm", "parameters", "expected"),
    [
        ("todb", {"INPUT_KIND": 7}, r"Input values are \(INPUT_KIND\): 7 is not one of the choices; "
                                    r"give the number of one: 0 = intensity, 1 = amplitude\."),
        ("syntheticscene", {"WIDTH": 5},
         r"Width \(pixels\) \(WIDTH\): 5 is not a number between 16 and 20000"),
        ("todb", {"OUTPUT": "/nonexistent-folder/x.tif"},
         r"Output \(OUTPUT\): Cannot write .*does not exist"),
    ],
)
def test_parameter_checks_say_what_to_give(
    sar_provider: Any, tmp_path: Any, write_geotiff: Any, algorithm: str, parameters: dict[str, Any],
    expected: str,
) -> None:
    """Finding 15.8: a bad value is refused before any work with the accepted values (or range) named."""
    import numpy as np
    from qgis.core import QgsApplication, QgsProcessingContext

    raster = write_geotiff(tmp_path / "in.tif", np.ones((4, 4), np.float32))
    alg = QgsApplication.processingRegistry().createAlgorithmById(f"sartoolbox:{algorithm}")
    values = {"INPUT": str(raster), "OUTPUT": str(tmp_path / "out.tif"),
              "OUTPUT_SAR": str(tmp_path / "s.tif"), "OUTPUT_OPTICAL": str(tmp_path / "o.tif"), **parameters}
    ok, message = alg.checkParameterValues(values, QgsProcessingContext())
    assert not ok
    assert re.search(expected, message), message
