"""The ``sartoolbox`` Processing provider: the list of SAR Toolbox algorithms."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from qgis.core import QgsProcessingAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import engine
from .algorithms.applytransform import ApplyTransformAlgorithm
from .algorithms.checkenvironment import CheckEnvironmentAlgorithm
from .algorithms.compress import CompressAlgorithm
from .algorithms.compressionquality import CompressionQualityAlgorithm
from .algorithms.coregister import CoregisterAlgorithm
from .algorithms.decompress import DecompressAlgorithm
from .algorithms.keypointregister import KeypointRegisterAlgorithm
from .algorithms.syntheticscene import SyntheticSceneAlgorithm
from .algorithms.todb import ToDbAlgorithm
from .algorithms.translate import TranslateAlgorithm
from .engine.setup.bundled import models_dir, runtime_requirements
from .engine.setup.install import install_requirements_command
from .graphical_models import SHIPPED_DIR, graphical_model_algorithms

PROVIDER_ID = "sartoolbox"
ICON_PATH = Path(__file__).resolve().parent / "icon.svg"

#: Every algorithm of the toolbox; add new algorithm classes here.
ALGORITHMS: tuple[type[QgsProcessingAlgorithm], ...] = (
    CheckEnvironmentAlgorithm,
    ToDbAlgorithm,
    SyntheticSceneAlgorithm,
    CompressAlgorithm,
    DecompressAlgorithm,
    CompressionQualityAlgorithm,
    CoregisterAlgorithm,
    ApplyTransformAlgorithm,
    TranslateAlgorithm,
    KeypointRegisterAlgorithm,
)

def _graphical_model_folders() -> list[Path]:
    """Shipped models, then the user's models folder (``SAR_TOOLBOX_MODELS_DIR``)."""
    return [SHIPPED_DIR, models_dir()]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_packages() -> list[str]:
    """Runtime packages (distribution names) whose module cannot be found (checked without importing them)."""
    return [r.distribution for r in runtime_requirements() if not _installed(r.module)]


class SarToolboxProvider(QgsProcessingProvider):
    """Processing provider ``sartoolbox`` ("SAR Toolbox")."""

    def id(self) -> str:
        return PROVIDER_ID

    def name(self) -> str:
        return "SAR Toolbox"

    def longName(self) -> str:
        return f"SAR Toolbox {engine.__version__}"

    def versionInfo(self) -> str:
        return engine.__version__

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def svgIconPath(self) -> str:
        return str(ICON_PATH)

    def loadAlgorithms(self) -> None:
        for algorithm_class in ALGORITHMS:
            self.addAlgorithm(algorithm_class())
        for model in graphical_model_algorithms(_graphical_model_folders()):
            self.addAlgorithm(model)

    def warningMessage(self) -> str:
        """What is missing and the one command that installs it, or "" when nothing is.

        QGIS shows this text as HTML in the dialog's message bar and HTML-escaped in its log, so it
        holds no markup and no ``<`` (the version pins stay in the requirement file the command names).
        """
        try:
            missing = missing_packages()
        except FileNotFoundError as exc:  # requirement files not shipped: an incomplete installation
            return f"SAR Toolbox: {exc}"
        if not missing:
            return ""
        return (
            f"SAR Toolbox: missing Python package(s): {', '.join(missing)}; the algorithms that need them "
            f"will fail. Install them into the Python QGIS runs with: {install_requirements_command()} "
            f"then restart QGIS (the 'Check environment' algorithm prints the same command)."
        )

    def supportsNonFileBasedOutput(self) -> bool:
        return False

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:
        return "tif"
