"""Shared base of every SAR Toolbox algorithm.

It is the one place where engine errors become ``QgsProcessingException``,
where engine ``logging`` records are forwarded to the Processing feedback, and
where the engine callbacks (progress, cancel, log) are built. Subclasses read
their parameters (through :class:`.params.ParameterValues`), call one engine
function in :meth:`SarAlgorithm.execute` and return :meth:`SarAlgorithm.outputs`.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
)
from qgis.PyQt.QtGui import QIcon

from ..engine import errors
from ..engine.run import Callbacks
from ..engine.setup.bundled import requirement_for
from . import checks
from .html_outputs import LastRunHtmlOutputs
from .params import Figure, ParameterHelpers, ParameterValues, defaults_help, figure_values

ICON_PATH = Path(__file__).resolve().parent.parent / "icon.svg"

#: Logger of the whole plugin package (the vendored engine included): shown in the Processing log.
PLUGIN_LOGGER = __name__.split(".")[0]
#: Logger of the engine the plugin runs: under :data:`PLUGIN_LOGGER` in the zip; ``engine`` where the
#: repository's one engine serves both (the test run, see tests/conftest.py).
ENGINE_LOGGER = errors.__name__.rsplit(".", 1)[0]


def forwarded_loggers() -> list[logging.Logger]:
    """The loggers whose records reach the Processing log: the plugin's, and its engine's if apart."""
    names = [PLUGIN_LOGGER]
    if not ENGINE_LOGGER.startswith(PLUGIN_LOGGER + "."):
        names.append(ENGINE_LOGGER)
    return [logging.getLogger(name) for name in names]


class Group(NamedTuple):
    """A group of the Processing toolbox: its id and the name shown."""

    id: str
    name: str


COMPRESSION = Group("compression", "Compression")
COREGISTRATION = Group("coregistration", "Co-registration")
DATA = Group("data", "Data")
RADIOMETRY = Group("radiometry", "Radiometry")
TOOLS = Group("tools", "Tools")
TRANSLATION = Group("translation", "Translation")


class FeedbackBridge:
    """Pushes engine messages to a feedback, once.

    Engine entry points both log a message and pass it to their ``log``
    callback; both channels end here, and a message that arrives through one
    channel right after it arrived through the other is not shown twice.
    """

    def __init__(self, feedback: QgsProcessingFeedback) -> None:
        self.feedback = feedback
        self._last: tuple[str, str] | None = None

    def push(self, message: str, channel: str, level: int = logging.INFO) -> None:
        if self._last is not None and self._last[0] == message and self._last[1] != channel:
            self._last = None
            return
        self._last = (message, channel)
        if level >= logging.WARNING:
            self.feedback.pushWarning(message)
        elif level >= logging.INFO:
            self.feedback.pushInfo(message)
        else:
            self.feedback.pushDebugInfo(message)

    def log(self, message: str) -> None:
        """The engine's ``log`` callback."""
        self.push(str(message), "callback")


class FeedbackLogHandler(logging.Handler):
    """Send ``logging`` records to a feedback (warning, info or debug) through a :class:`FeedbackBridge`.

    Only records of the thread that runs the algorithm are forwarded, so two
    algorithms running at the same time in QGIS do not see each other's messages.
    """

    def __init__(self, bridge: FeedbackBridge) -> None:
        super().__init__(level=logging.DEBUG)
        self.bridge = bridge
        self.thread = threading.get_ident()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            self.bridge.push(self.format(record), "logging", record.levelno)
        except Exception:  # a broken feedback must never break the run
            self.handleError(record)


#: Bridges of the runs in progress, by id of their feedback (see :func:`engine_callbacks`).
_BRIDGES: dict[int, FeedbackBridge] = {}


@contextmanager
def forward_logging(feedback: QgsProcessingFeedback, level: int = logging.INFO) -> Iterator[FeedbackBridge]:
    """Forward records of the plugin's loggers (engine included) to ``feedback`` while the block runs."""
    bridge = FeedbackBridge(feedback)
    handler = FeedbackLogHandler(bridge)
    loggers = forwarded_loggers()
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > level:
            logger.setLevel(level)
    _BRIDGES[id(feedback)] = bridge
    try:
        yield bridge
    finally:
        _BRIDGES.pop(id(feedback), None)
        for logger, before in zip(loggers, previous, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(before)


def dependency_message(exc: ImportError) -> str | None:
    """A message naming the package to install when ``exc`` is a missing heavy package, else None."""
    if isinstance(exc, errors.DependencyError):
        return str(exc)
    module = (getattr(exc, "name", None) or "").split(".")[0]
    requirement = requirement_for(module) if module else None
    if requirement is None:
        return None
    return str(errors.DependencyError(requirement.distribution, "This algorithm"))


@contextmanager
def engine_errors(feedback: QgsProcessingFeedback) -> Iterator[None]:
    """Turn every error raised inside the block into a ``QgsProcessingException``.

    Engine errors keep their message (it already says what to change); a
    missing optional package names the package to install; anything else is
    reported as an unexpected error with the traceback in the debug log.
    """
    try:
        yield
    except QgsProcessingException:
        raise
    except errors.SarToolboxError as exc:
        raise QgsProcessingException(str(exc)) from exc
    except ImportError as exc:
        message = dependency_message(exc)
        if message is None:
            feedback.pushDebugInfo(traceback.format_exc())
            message = f"SAR Toolbox could not import a module: {exc}. Reinstall the plugin."
        raise QgsProcessingException(message) from exc
    except MemoryError as exc:
        raise QgsProcessingException(
            "Out of memory. Close other applications or process a smaller extent."
        ) from exc
    except Exception as exc:
        feedback.pushDebugInfo(traceback.format_exc())
        raise QgsProcessingException(
            f"Unexpected error ({type(exc).__name__}: {exc}). Please report it with the Processing log."
        ) from exc


def engine_callbacks(feedback: QgsProcessingFeedback) -> Callbacks:
    """The ``progress``, ``is_cancelled`` and ``log`` keyword arguments every engine entry point takes."""
    bridge = _BRIDGES.get(id(feedback))
    return {
        "progress": feedback.setProgress,
        "is_cancelled": feedback.isCanceled,
        "log": bridge.log if bridge is not None else feedback.pushInfo,
    }


class SarAlgorithm(LastRunHtmlOutputs, ParameterHelpers):
    """Base of the SAR Toolbox algorithms.

    Subclasses set :attr:`NAME`, :attr:`DISPLAY_NAME`, :attr:`GROUP` (one of
    this module's groups), :attr:`HELP` and, when they return figures,
    :attr:`FIGURES`; they implement :meth:`add_parameters` and :meth:`execute`
    and never catch engine errors themselves. Parameters are declared with the
    helpers of :class:`.params.ParameterHelpers` and read with
    :class:`.params.ParameterValues`.
    """

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = Group("", "")
    HELP = ""
    #: Numeric outputs read from the engine's result (declared by :meth:`initAlgorithm`, see :meth:`outputs`).
    FIGURES: tuple[Figure, ...] = ()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return self.tr(self.DISPLAY_NAME)

    def group(self) -> str:
        return self.tr(self.GROUP.name)

    def groupId(self) -> str:
        return self.GROUP.id

    def shortHelpString(self) -> str:
        """The help, then each parameter's default (shown in the dialog and by ``qgis_process help``)."""
        return f"{self.tr(self.HELP)}\n\n{defaults_help(self.parameterDefinitions())}"

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def createInstance(self) -> QgsProcessingAlgorithm:
        copy = type(self)()
        copy.made_from(self)
        return copy

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """The parameters (:meth:`add_parameters`), then one numeric output per figure of :attr:`FIGURES`."""
        self.add_parameters()
        self.add_figure_outputs(self.FIGURES)

    def add_parameters(self) -> None:
        """Declare the parameters (and outputs other than :attr:`FIGURES`)."""
        raise NotImplementedError

    def checkParameterValues(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[bool, str]:
        """QGIS's checks, then bands and outputs; each failure says what to change (see :mod:`.checks`)."""
        # QGIS 3.22 rejects some parameters left out even when they have a default (BAND=1,
        # CRS=EPSG:32631): check with the defaults filled in, as parameterAs...() will use them.
        filled = dict(parameters)
        for definition in self.parameterDefinitions():
            if filled.get(definition.name()) is None and definition.defaultValue() is not None:
                filled[definition.name()] = definition.defaultValue()
        ok, message = super().checkParameterValues(filled, context)
        if not ok:
            explained = (checks.explain_invalid_value(d, filled.get(d.name()), context)
                         for d in self.parameterDefinitions())
            return False, next((text for text in explained if text), message)
        problem = checks.band_problem(self, filled, context) or checks.destination_problem(self, filled)
        return (False, problem) if problem else (True, "")

    def processAlgorithm(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback | None,
    ) -> dict[str, Any]:
        if feedback is None:
            feedback = QgsProcessingFeedback()
        self.record_html_outputs(None)
        with forward_logging(feedback), engine_errors(feedback):
            results = self.execute(ParameterValues(self, parameters, context), feedback)
        self.record_html_outputs(results)
        return results

    def execute(self, values: ParameterValues, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Read parameters, call one engine function and return :meth:`outputs`."""
        raise NotImplementedError

    def outputs(self, files: Mapping[str, str | None], result: Any = None) -> dict[str, Any]:
        """The run's outputs: the files written (those not None), then :attr:`FIGURES` of ``result``."""
        written = {name: path for name, path in files.items() if path is not None}
        return {**written, **figure_values(result, self.FIGURES)}
