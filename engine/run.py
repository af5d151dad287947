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
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

from .errors import CancelledError

Progress = Callable[[float], Any]
"""``progress(percent)`` with percent in [0, 100]."""
IsCancelled = Callable[[], bool]
Log = Callable[[str], Any]


class Callbacks(TypedDict):
    """The three callbacks as the keyword arguments every entry point takes:
    ``convert_db(..., **callbacks)`` (the plugin's ``engine_callbacks(feedback)``)."""

    progress: Progress
    is_cancelled: IsCancelled
    log: Log


_logger = logging.getLogger(__name__)
T = TypeVar("T")
POLL_SECONDS = 0.1
"""How often :meth:`Run.result` checks for cancel while it waits for work in another thread."""


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

    def steps(self, total: int, step: int, what: str = "The run") -> Iterator[int]:
        """``0, step, 2 * step, ...`` below ``total``: checks for cancel before each and reports the share
        done after each, so a pass over a raster in strips of ``step`` rows can be followed and stopped."""
        for start in range(0, total, step):
            self.check(what)
            yield start
            self.progress(min(start + step, total) / total)

    def result(self, future: Future[T], what: str = "The run") -> T:
        """The result of ``future`` (work in another thread), checking for cancel every
        :data:`POLL_SECONDS` while waiting. On cancel the work already running is not stopped: the
        caller drops it (e.g. ``executor.shutdown(wait=False, cancel_futures=True)``)."""
        while True:
            self.check(what)
            try:
                return future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                continue

    def background(self, what: str, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work(*args, **kwargs)`` in a daemon thread, waited for with :meth:`result`: a long
        computation (whole images in memory, no file written) that cannot poll often enough itself.
        On cancel this returns at once with :class:`CancelledError`; the computation stops at its own
        next :meth:`check` (it should take this run) and its result is dropped."""
        future: Future[T] = Future()

        def target() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(work(*args, **kwargs))
            except BaseException as exc:  # handed to the waiting thread
                future.set_exception(exc)

        threading.Thread(target=target, name=f"sartoolbox-{what}", daemon=True).start()
        return self.result(future, what)

    def gdal_callback(self) -> Callable[[float, Any, Any], int]:
        """A GDAL progress callback (``gdal.Translate``/``gdal.Warp``'s ``callback``): reports GDAL's
        fraction done on this run's span and asks GDAL to stop (returns 0) once the user cancelled;
        GDAL then raises, and the caller calls :meth:`check` to turn that into :class:`CancelledError`."""

        def callback(complete: float, message: Any = None, data: Any = None) -> int:
            self.progress(complete)
            return 0 if self.cancelled else 1

        return callback

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
