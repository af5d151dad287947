"""Error hierarchy of the SAR Toolbox engine.

Every error derives from :class:`SarToolboxError`, and also from the built-in
exception that fits (``ValueError`` for bad input, ``OSError`` for I/O), so
callers can catch either. Every message says what to change. Imports only the stdlib-only
:mod:`engine.setup.install` (no other engine module), so every module can import it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .setup.install import install_command


class SarToolboxError(Exception):
    """Root of every error raised on purpose by the SAR Toolbox."""


class InputError(SarToolboxError, ValueError):
    """An input (raster, parameter, band) is unusable as given."""


class UnsupportedDataError(InputError):
    """The data is valid but not supported (e.g. complex SLC)."""


class ModelError(SarToolboxError, ValueError):
    """A model file is missing metadata, has invalid metadata or the wrong task."""


class RasterIOError(SarToolboxError, OSError):
    """A raster could not be read or written."""


class CompressedFileError(SarToolboxError, ValueError):
    """A compressed SAR file is truncated, corrupted, foreign or of an unknown version."""


class RegistrationError(SarToolboxError, ValueError):
    """Co-registration could not produce a trustworthy result."""


class CancelledError(SarToolboxError):
    """The user cancelled the run; nothing was written."""


class DependencyError(SarToolboxError, ImportError):
    """An optional package needed by this operation is not installed."""

    def __init__(self, package: str, purpose: str, install: str | None = None) -> None:
        """``install``: the exact command, when it is not ``pip install <package>``."""
        self.package = package
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed. "
            f"Install it into the Python that QGIS uses: {install or install_command(package)}"
        )


def check_choice(value: str, choices: Iterable[str], what: str, hint: str = "") -> str:
    """``value`` when it is one of ``choices``; else :class:`InputError` naming the choices:
    ``Unknown <what> '<value>'; use one of <choices><hint>.``"""
    offered = tuple(choices)
    if value not in offered:
        raise InputError(f"Unknown {what} '{value}'; use one of {', '.join(offered)}{hint}.")
    return value
