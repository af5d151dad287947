"""What ships with the toolbox: the models folder and the runtime package list.

The one place that knows where the bundled models are (``models/`` beside the
engine package, in the repository, the plugin zip and the installed ``sar_toolbox``
package alike, or the folder named by ``$SAR_TOOLBOX_MODELS_DIR``), the toolbox's
version (``metadata.txt`` beside the engine) and which Python packages the toolbox
needs at run time. The package list is read from ``requirements/runtime.txt``
and ``requirements/onnxruntime-cpu.txt`` (shipped in the plugin zip too), so
``make setup``, the plugin's missing-package warning, ``checkenvironment`` and
the install commands all use the same pins.

Standard library only: the plugin reads this module while QGIS loads it.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass
from pathlib import Path

MODELS_ENV = "SAR_TOOLBOX_MODELS_DIR"
"""Environment variable naming another models folder (tests, custom installations)."""

ROOT = Path(__file__).resolve().parents[2]
"""The folder holding ``engine/``: the repository root, the plugin folder in the zip, or the
installed ``sar_toolbox`` package."""

METADATA_NAME = "metadata.txt"
"""The QGIS plugin metadata beside the engine: the one source of the version (setup.py reads it too)."""

REQUIREMENT_FILES = ("runtime.txt", "onnxruntime-cpu.txt")
"""Files of :func:`runtime_requirements`, under ``requirements/`` beside the engine."""

PLUGIN_REQUIREMENTS = "plugin.txt"
"""The one file a plugin user installs (``-r`` of each of :data:`REQUIREMENT_FILES`), shipped in the zip."""

SHIPPED_REQUIREMENTS = (PLUGIN_REQUIREMENTS, "runtime.txt", "onnxruntime-*.txt")
"""The requirement files (globs under ``requirements/``) shipped beside the engine, in the plugin zip
(``scripts/package.py``) and in the installed package (``setup.py``) alike: the runtime list, the one
file to install and both ONNX Runtime builds (the environment report names the GPU one)."""

IMPORT_NAMES = {"scikit-image": "skimage"}
"""Import name of each distribution whose import name is not its own name."""

_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(.*)$")


def models_dir() -> Path:
    """The bundled models folder, or ``$SAR_TOOLBOX_MODELS_DIR`` when it is set."""
    override = os.environ.get(MODELS_ENV)
    return Path(override) if override else ROOT / "models"


def version(root: Path = ROOT) -> str:
    """The toolbox version: ``version`` of ``metadata.txt`` beside the engine (``0+unknown`` without it)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(root / METADATA_NAME, encoding="utf-8")
    return parser.get("general", "version", fallback="0+unknown")


def requirements_dir() -> Path:
    """The folder of the requirement files (``requirements/`` beside the engine)."""
    return ROOT / "requirements"


def plugin_requirements_file() -> Path:
    """``requirements/plugin.txt`` beside the engine: what ``pip install -r`` needs for the plugin."""
    return requirements_dir() / PLUGIN_REQUIREMENTS


@dataclass(frozen=True)
class Requirement:
    """One runtime package: distribution name, pinned specifier (``numpy>=1.24,<2``) and import name."""

    distribution: str
    spec: str
    module: str


def parse_requirements(text: str) -> list[Requirement]:
    """The requirements of a pip requirement file's text (comments and blank lines skipped)."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        match = _REQUIREMENT.match(line)
        if not match:
            continue
        name = match.group(1).lower()
        found.append(Requirement(name, f"{name}{match.group(2).replace(' ', '')}",
                                 IMPORT_NAMES.get(name, name.replace("-", "_"))))
    return found


def runtime_requirements(folder: Path | None = None) -> list[Requirement]:
    """Every package the toolbox imports at run time, pinned, in file order.

    Raises ``FileNotFoundError`` naming the missing file when the requirement
    files are not shipped (an incomplete installation).
    """
    folder = requirements_dir() if folder is None else folder
    requirements: list[Requirement] = []
    for name in REQUIREMENT_FILES:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"'{path}' is missing: the installation is incomplete. Reinstall the SAR Toolbox plugin."
            )
        requirements += parse_requirements(path.read_text(encoding="utf-8"))
    return requirements


def requirement_for(name: str, requirements: list[Requirement] | None = None) -> Requirement | None:
    """The runtime requirement whose distribution or import name is ``name`` (None if there is none)."""
    try:
        known = runtime_requirements() if requirements is None else requirements
    except FileNotFoundError:
        return None
    key = name.lower().split(".")[0]
    return next((r for r in known if key in (r.distribution, r.module)), None)
