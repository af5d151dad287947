"""Graphical-modeler models shipped with the plugin (``graphical_models/*.model3``), as algorithms.

Each ``.model3`` file is a model made in QGIS's graphical modeler (editable there). The provider
lists it as ``sartoolbox:<model name>`` through :class:`GraphicalModelAlgorithm`, a thin wrapper
that gives the model's outputs plain names: QGIS 3.22 names a model output ``<child id>:<output>``
(e.g. ``compress:OUTPUT``), the wrapper exposes it as ``OUTPUT`` and maps it back when it runs.
A model file that does not load (broken, or from a newer QGIS) is logged and skipped; it never
stops the provider from loading.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qgis.core import (
    Qgis,
    QgsMessageLog,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
)

from .algorithms.html_outputs import LastRunHtmlOutputs
from .algorithms.params import defaults_help

logger = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "graphical_models"
DISPLAY_NAME_KEY = "SAR_DISPLAY_NAME"
"""Key of the model's help content that holds the display name shown in the toolbox."""


def plain_name(name: str) -> str:
    """``compress:OUTPUT`` -> ``OUTPUT`` (model outputs in QGIS 3.22); other names unchanged."""
    return name.rsplit(":", 1)[-1]


class GraphicalModelAlgorithm(LastRunHtmlOutputs, QgsProcessingAlgorithm):
    """A shipped ``.model3`` file run as a SAR Toolbox algorithm."""

    def __init__(self, path: Path, model: QgsProcessingModelAlgorithm) -> None:
        super().__init__()
        self.path = path
        self.model = model
        self._names: dict[str, str] = {}  # plain name -> the model's own parameter name

    def createInstance(self) -> GraphicalModelAlgorithm:
        loaded = load_model(self.path)
        if loaded is None:  # the file changed since the provider loaded it
            raise QgsProcessingException(f"The model file '{self.path}' no longer loads.")
        copy = GraphicalModelAlgorithm(self.path, loaded)
        copy.made_from(self)
        return copy

    def name(self) -> str:
        return self.model.name()

    def displayName(self) -> str:
        return str(self.model.helpContent().get(DISPLAY_NAME_KEY) or self.model.displayName())

    def group(self) -> str:
        return self.model.group()

    def groupId(self) -> str:
        return self.model.groupId()

    def shortHelpString(self) -> str:
        """The model's description, then each parameter's default (as every SAR Toolbox algorithm)."""
        description = str(self.model.helpContent().get("ALG_DESC", ""))
        return f"{description}\n\n{defaults_help(self.parameterDefinitions())}"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        for definition in self.model.parameterDefinitions():
            clone = definition.clone()
            clone.setName(plain_name(definition.name()))
            self._names[clone.name()] = definition.name()
            self.addParameter(clone)

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        self.record_html_outputs(None)
        inner = {self._names.get(key, key): value for key, value in parameters.items()}
        results, ok = self.model.run(inner, context, feedback)
        if not ok:
            raise QgsProcessingException(f"The model '{self.displayName()}' failed; see the log above.")
        plain = {plain_name(key): value for key, value in results.items()}
        self.record_html_outputs(plain)
        return plain


def load_model(path: Path) -> QgsProcessingModelAlgorithm | None:
    """The model in ``path``, or None (logged) when it does not load or has no name."""
    model = QgsProcessingModelAlgorithm()
    try:
        loaded = model.fromFile(str(path))
    except Exception as exc:  # a broken file must never break the provider
        loaded, reason = False, str(exc)
    else:
        reason = "not a QGIS graphical model (.model3) file"
    if not loaded or not model.name() or not model.childAlgorithms():
        message = f"SAR Toolbox: skipped the graphical model '{path}': {reason}."
        QgsMessageLog.logMessage(message, "SAR Toolbox", Qgis.Warning)
        logger.warning("%s", message)
        return None
    return model


def graphical_model_algorithms(folders: Iterable[Path]) -> list[GraphicalModelAlgorithm]:
    """Every loadable ``.model3`` in ``folders`` (sorted by file name), wrapped as an algorithm."""
    found: list[GraphicalModelAlgorithm] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.model3")):
            model = load_model(path)
            if model is not None:
                found.append(GraphicalModelAlgorithm(path, model))
    return found
