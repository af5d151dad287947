"""The run context: progress, cancel and log callbacks travelling together.

Every engine entry point takes the three optional callbacks a QGIS algorithm
hands over (``progress=feedback.setProgress``, ``is_cancelled=feedback.isCanceled``,
``log=feedback.pushInfo``), builds one :class:`Run` from them with
:meth:`Run.of`, and passes that down. Inner stages then write
``run.check()``, ``run.progress(f)``, ``run.say(msg)`` and ``run.span(lo, hi)``
instead of testing each callback for ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import CancelledError

Progress = Callable[[float], Any]
"""``progress(percent)`` with percent in [0, 100]."""
IsCancelled = Callable[[], bool]
Log = Callable[[str], Any]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """Callbacks of one run, with sub-progress spans.

    ``lo`` and ``hi`` are the percentages that this run's own 0..1 fraction maps
    to on the caller's progress bar; :meth:`span` narrows them for a stage.
    """

    on_progress: Progress | None = None
    is_cancelled: IsCancelled | None = None
    log: Log | None = None
    lo: float = 0.0
    hi: float = 100.0

    @classmethod
    def of(
        cls,
        progress: Progress | None = None,
        is_cancelled: IsCancelled | None = None,
        log: Log | None = None,
    ) -> Run:
        """The run context for an entry point's three optional callbacks."""
        return cls(progress, is_cancelled, log)

    @property
    def cancelled(self) -> bool:
        """Whether the user asked to stop."""
        return self.is_cancelled is not None and bool(self.is_cancelled())

    def check(self, what: str = "The run") -> None:
        """Raise :class:`CancelledError` if the user asked to stop."""
        if self.cancelled:
            raise CancelledError(f"{what} was cancelled; nothing was written.")

    def progress(self, fraction: float) -> None:
        """Report ``fraction`` (0..1) of this run's span."""
        if self.on_progress is not None:
            f = min(max(float(fraction), 0.0), 1.0)
            self.on_progress(self.lo + f * (self.hi - self.lo))

    def span(self, start: float, stop: float) -> Run:
        """A sub-run covering ``start..stop`` (fractions of this run's span)."""
        width = self.hi - self.lo
        return Run(self.on_progress, self.is_cancelled, self.log,
                   self.lo + start * width, self.lo + stop * width)

    def say(self, message: str, level: int = logging.INFO, logger: logging.Logger | None = None) -> None:
        """Log ``message`` to the module logger and forward it to the user's log."""
        (logger or _logger).log(level, message)
        if self.log is not None:
            self.log(message)

    def warn(self, message: str, logger: logging.Logger | None = None) -> None:
        """:meth:`say` at WARNING level."""
        self.say(message, logging.WARNING, logger)


QUIET = Run()
"""A run with no callbacks (tests, scripts)."""
