"""The exact command that installs a missing package into the Python QGIS uses (stdlib only).

A leaf module: :mod:`engine.errors` builds its :class:`~engine.errors.DependencyError` message with it
and :mod:`engine.environment` its report, without either importing the other.
"""

from __future__ import annotations

import shlex
import sys
import sysconfig
from pathlib import Path

from .bundled import requirement_for


def python_executable() -> str:
    """The Python interpreter to install packages into (inside QGIS, ``sys.executable`` is QGIS)."""
    exe = Path(sys.executable)
    if exe.name.startswith("python"):
        return str(exe)
    candidate = Path(sys.base_prefix) / "bin" / "python3"
    return str(candidate) if candidate.exists() else "python3"


def externally_managed() -> bool:
    """True for a distribution-managed Python outside a venv (PEP 668: Debian's /usr/bin/python3)."""
    if sys.prefix != sys.base_prefix:
        return False
    return (Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").is_file()


def install_command(*packages: str) -> str:
    """One shell command that installs ``packages`` into the Python QGIS uses.

    A bare name of a runtime package (``rasterio``) is pinned as in ``requirements/``
    (:mod:`engine.bundled`). Debian marks its Python as externally managed (PEP 668),
    so plain ``pip install`` is refused there; a per-user install with
    ``--break-system-packages`` is what works for QGIS's Python without touching
    Debian's own files.
    """
    specs = []
    for package in packages:
        known = requirement_for(package)
        specs.append(known.spec if known is not None else package)
    flags = " --user --break-system-packages" if externally_managed() else ""
    return f"{python_executable()} -m pip install{flags} {' '.join(shlex.quote(s) for s in specs)}"
