"""Parameter checks that run before any work, with messages that say what to change.

:meth:`.base.SarAlgorithm.checkParameterValues` calls these. Errors found here
are shown once (``qgis_process`` prints "ERROR: An error was encountered while
checking parameter values" and the message), in the dialog as a message box,
and nothing is computed or written. Errors raised while an algorithm runs are
printed three times by ``qgis_process`` 3.22 itself (message log, feedback,
message log again), so every check that can be made up front is made here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingDestinationParameter,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterBand,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

#: Destination values that are not a file path chosen by the user.
NOT_A_PATH = ("", "TEMPORARY_OUTPUT", "memory:")


def label(definition: QgsProcessingParameterDefinition) -> str:
    """``Description (NAME)``: what the dialog shows and what the command line takes."""
    return f"{definition.description()} ({definition.name()})"


def enum_choices(definition: QgsProcessingParameterEnum) -> str:
    """``0 = intensity, 1 = amplitude, 2 = db``."""
    return ", ".join(f"{index} = {option}" for index, option in enumerate(definition.options()))


def explain_invalid_value(
    definition: QgsProcessingParameterDefinition, value: Any, context: QgsProcessingContext
) -> str | None:
    """Why ``value`` is not acceptable for ``definition`` and what to give instead (None if it is)."""
    if definition.checkValueIsAcceptable(value, context):
        return None
    if isinstance(definition, QgsProcessingParameterEnum):
        return (f"{label(definition)}: {value!r} is not one of the choices; give the number of one: "
                f"{enum_choices(definition)}.")
    if isinstance(definition, QgsProcessingParameterNumber):
        return (f"{label(definition)}: {value!r} is not a number between {definition.minimum():g} and "
                f"{definition.maximum():g}; choose one in that range.")
    if isinstance(definition, QgsProcessingParameterRasterLayer) and isinstance(value, str):
        return explain_unreadable_raster(definition, value)
    return None


def explain_unreadable_raster(definition: QgsProcessingParameterDefinition, value: str) -> str:
    """Why a raster given as a path cannot be opened (QGIS only says "incorrect")."""
    path = Path(value.split("|")[0])
    where = label(definition)
    if not path.exists():
        return f"{where}: the file '{path}' does not exist. Choose an existing raster file."
    if path.is_dir():
        return f"{where}: '{path}' is a folder. Choose a raster file inside it."
    if not os.access(path, os.R_OK):
        return f"{where}: '{path}' cannot be read (permission denied). Fix its permissions."
    return f"{where}: '{path}' is not a raster GDAL can read. Choose a GeoTIFF or another raster file."


def band_problem(
    algorithm: QgsProcessingAlgorithm, parameters: dict[str, Any], context: QgsProcessingContext
) -> str | None:
    """A band parameter that names a band its raster does not have (None when every band exists)."""
    for definition in algorithm.parameterDefinitions():
        if not (isinstance(definition, QgsProcessingParameterBand) and definition.parentLayerParameterName()):
            continue
        parent, name = definition.parentLayerParameterName(), definition.name()
        if parameters.get(name) in (None, "", []):  # not given and no default: the engine decides
            continue
        layer = algorithm.parameterAsRasterLayer(parameters, parent, context)
        if layer is None or not layer.isValid():
            continue
        bands = (algorithm.parameterAsInts(parameters, name, context) if definition.allowMultiple()
                 else [algorithm.parameterAsInt(parameters, name, context)])
        count = layer.bandCount()
        for band in bands:
            if not 1 <= band <= count:
                source = layer.source().split("|")[0]
                return (f"{label(definition)}: band {band} does not exist in '{source}', which has "
                        f"{count} band(s); choose a band between 1 and {count}.")
    return None


def destination_path(value: Any) -> str | None:
    """The file path of a destination parameter's value (None when it is not a user-chosen path)."""
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink.staticValue()
    if not isinstance(value, str) or value in NOT_A_PATH or value.startswith(NOT_A_PATH[1:]):
        return None
    return value


def destination_problem(algorithm: QgsProcessingAlgorithm, parameters: dict[str, Any]) -> str | None:
    """An output that cannot be written (missing or read-only folder, read-only file), before any work."""
    from ..engine.errors import RasterIOError
    from ..engine.raster_io import check_writable

    for definition in algorithm.parameterDefinitions():
        if not isinstance(definition, QgsProcessingDestinationParameter):
            continue
        path = destination_path(parameters.get(definition.name()))
        if path is None:
            continue
        try:
            check_writable(path)
        except RasterIOError as exc:
            return f"{label(definition)}: {exc}"
    return None
