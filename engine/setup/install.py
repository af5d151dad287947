"""The exact command that installs a missing package into the Python QGIS uses (stdlib only).

A leaf module: :mod:`engine.errors` builds its :class:`~engine.errors.DependencyError` message with it
and :mod:`engine.setup.environment` its report, without either importing the other.
"""

from __future__ import annotations

import shlex
import sys
import sysconfig
from pathlib import Path

from .bundled import plugin_requirements_file, requirement_for


def python_executable() -> str:
    """The interpreter that runs this code: the one to install packages into.

    ``sys.executable`` is trusted when it lies in the running installation's own folder (a venv's
    ``bin/python``, ``/usr/bin/python3``). Inside QGIS it is whatever ``python3`` came first on
    ``PATH`` when QGIS started (a pyenv shim, another installation's Python) or QGIS itself; the
    interpreter of the running installation is then named from ``sys.prefix`` and the running
    version (``/usr/bin/python3.11``), never from ``PATH``.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prefix = Path(sys.prefix)
    candidates = (prefix / "bin" / f"python{version}", prefix / "bin" / "python3", prefix / "python.exe")
    executable = Path(sys.executable) if sys.executable else None
    if executable is not None and executable.name.startswith("python") and executable.is_file() \
            and executable.parent in {candidate.parent for candidate in candidates}:
        return str(executable)
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    return str(found) if found is not None else "python3"


def externally_managed() -> bool:
    """True for a distribution-managed Python outside a venv (PEP 668: Debian's /usr/bin/python3)."""
    if sys.prefix != sys.base_prefix:
        return False
    return (Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").is_file()


def _pip_install() -> str:
    """``<python> -m pip install`` with the flags this Python needs (see :func:`install_command`)."""
    flags = " --user --break-system-packages" if externally_managed() else ""
    return f"{python_executable()} -m pip install{flags}"


def install_command(*packages: str) -> str:
    """One shell command that installs ``packages`` into the Python QGIS uses.

    A bare name of a runtime package (``rasterio``) is pinned as in ``requirements/``
    (:mod:`engine.setup.bundled`). Debian marks its Python as externally managed (PEP 668),
    so plain ``pip install`` is refused there; a per-user install with
    ``--break-system-packages`` is what works for QGIS's Python without touching
    Debian's own files.
    """
    specs = []
    for package in packages:
        known = requirement_for(package)
        specs.append(known.spec if known is not None else package)
    return f"{_pip_install()} {' '.join(shlex.quote(s) for s in specs)}"


def install_requirements_command(requirements: Path | None = None) -> str:
    """One shell command that installs every runtime package of the plugin, pinned, into the Python
    QGIS uses: ``pip install -r`` of the shipped ``requirements/plugin.txt`` (an absolute path, so it
    works from any folder)."""
    path = plugin_requirements_file() if requirements is None else requirements
    return f"{_pip_install()} -r {shlex.quote(str(path))}"
