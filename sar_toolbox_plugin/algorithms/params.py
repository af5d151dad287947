"""Parameter definitions and readings shared by the SAR Toolbox algorithms.

:class:`ParameterHelpers` is the part of :class:`.base.SarAlgorithm` that declares
the parameters several algorithms have in some form: a raster band and what its
values are, a choice among named options, an optional ONNX model, and the
figures of an engine result returned as numeric outputs. :class:`ParameterValues`
reads the values of one run by name. The names that mean the same in every
algorithm (``INPUT``, ``BAND``, ``INPUT_KIND``, ``MODEL``, ``OUTPUT``, ``REFERENCE``) are
declared here once; each algorithm names its other parameters (class
constants), labels and defaults; only the wiring lives here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingDestinationParameter,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)
from qgis.PyQt.QtCore import QCoreApplication

ParameterT = TypeVar("ParameterT", bound=QgsProcessingParameterDefinition)

#: Parameter names that mean the same in every algorithm that has them.
INPUT = "INPUT"
BAND = "BAND"
INPUT_KIND = "INPUT_KIND"
MODEL = "MODEL"
OUTPUT = "OUTPUT"
REFERENCE = "REFERENCE"

#: Labels of the raster, band and value-kind parameters of :meth:`ParameterHelpers.add_band_input`.
BAND_INPUT_LABELS = ("Input raster", "Band", "Input values are")


class BandInput(NamedTuple):
    """Names of a raster layer parameter, of its band and of what the band holds (one of ``kinds``)."""

    kinds: Sequence[str]
    raster: str = INPUT
    band: str = BAND
    kind: str = INPUT_KIND


class FileOutput(NamedTuple):
    """An optional file an algorithm writes when given a path: parameter name, label, format
    (``suffix`` and its ``description``, shown in the file dialog's filter)."""

    name: str
    label: str
    suffix: str
    description: str


class Figure(NamedTuple):
    """A numeric output filled from an engine result: output name, label, attribute of the result
    (by default the name in lower case: ``BPP`` is ``result.bpp``)."""

    name: str
    label: str
    attribute: str = ""

    def value(self, result: Any) -> Any:
        """This figure of the engine's ``result``."""
        return getattr(result, self.attribute or self.name.lower())


def default_text(definition: QgsProcessingParameterDefinition) -> str | None:
    """The default of a parameter as the command line takes it (``1 (r2)`` for an enum), None if none."""
    default = definition.defaultValue()
    if default is None or isinstance(definition, QgsProcessingDestinationParameter):
        return None
    if isinstance(definition, QgsProcessingParameterEnum):
        return f"{default} ({definition.options()[int(default)]})"
    if isinstance(definition, QgsProcessingParameterBoolean):
        return "1 (yes)" if default else "0 (no)"
    if isinstance(definition, QgsProcessingParameterNumber):
        return f"{float(default):g}"
    return str(default)


def defaults_help(definitions: Iterable[QgsProcessingParameterDefinition]) -> str:
    """One help paragraph: each parameter's default, the optional ones without default, the required ones."""
    defaults, unset, required = [], [], []
    for definition in definitions:
        text = default_text(definition)
        if text is not None:
            defaults.append(f"{definition.name()}={text}")
        elif definition.flags() & QgsProcessingParameterDefinition.FlagOptional:
            unset.append(definition.name())
        else:
            required.append(definition.name())
    parts = [f"required: {', '.join(required)}" if required else "",
             f"defaults when left out: {', '.join(defaults)}" if defaults else "",
             f"optional, not set by default: {', '.join(unset)}" if unset else ""]
    return "<b>Parameters</b> (command-line names) - " + "; ".join(p for p in parts if p) + "."


def as_advanced(parameter: ParameterT) -> ParameterT:
    """``parameter``, shown under the dialog's "Advanced parameters"."""
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


def figure_values(result: Any, figures: Iterable[Figure]) -> dict[str, Any]:
    """The outputs of ``figures`` read from ``result`` (``{name: result.attribute}``), in order."""
    return {figure.name: figure.value(result) for figure in figures}


class ParameterHelpers(QgsProcessingAlgorithm):
    """Declare the parameters the SAR Toolbox algorithms share."""

    INPUT = INPUT
    BAND = BAND
    INPUT_KIND = INPUT_KIND
    MODEL = MODEL
    OUTPUT = OUTPUT
    REFERENCE = REFERENCE

    @staticmethod
    def tr(text: str) -> str:
        return QCoreApplication.translate("SarToolbox", text)

    # Definitions (in initAlgorithm) ----------------------------------------------------

    def add_band_input(
        self, names: BandInput, labels: tuple[str, str, str] = BAND_INPUT_LABELS, default_band: int | None = 1
    ) -> None:
        """A raster layer, one of its bands and what the band holds (default the first kind).

        The band is optional with default 1, so that leaving it out means band 1 on the command line
        too (``qgis_process`` 3.22 demands a mandatory band parameter although it has a default).
        With ``default_band=None`` it has no default: the engine then decides (a single band needs none).
        """
        raster_label, band_label, kind_label = labels
        self.add_raster_band(names.raster, names.band, (raster_label, band_label), default_band)
        self.add_enum(names.kind, kind_label, names.kinds)

    def add_raster_band(
        self, raster: str, band: str, labels: tuple[str, str], default_band: int | None = 1
    ) -> None:
        """A raster layer and one of its bands (optional: see :meth:`add_band_input`)."""
        raster_label, band_label = labels
        self.addParameter(QgsProcessingParameterRasterLayer(raster, self.tr(raster_label)))
        self.addParameter(
            QgsProcessingParameterBand(
                band, self.tr(band_label), defaultValue=default_band, parentLayerParameterName=raster,
                optional=True,
            )
        )

    def add_enum(
        self, name: str, label: str, options: Sequence[str], default: int = 0, advanced: bool = False
    ) -> None:
        """A choice among ``options`` (``default`` preselected), under "Advanced" when ``advanced``."""
        parameter = QgsProcessingParameterEnum(
            name, self.tr(label), options=list(options), defaultValue=default
        )
        self.addParameter(as_advanced(parameter) if advanced else parameter)

    def add_onnx_file(self, name: str, label: str, advanced: bool = False) -> None:
        """An optional ``.onnx`` model file (under "Advanced parameters" when ``advanced``)."""
        parameter = QgsProcessingParameterFile(name, self.tr(label), extension="onnx", optional=True)
        self.addParameter(as_advanced(parameter) if advanced else parameter)

    def add_file_outputs(self, outputs: Iterable[FileOutput]) -> None:
        """One optional file destination per output, not created unless asked for."""
        for output in outputs:
            self.addParameter(QgsProcessingParameterFileDestination(
                output.name, self.tr(output.label), fileFilter=f"{output.description} (*{output.suffix})",
                optional=True, createByDefault=False,
            ))  # fmt: skip

    def add_figure_outputs(self, figures: Iterable[Figure]) -> None:
        """One numeric output per figure."""
        self.add_outputs(QgsProcessingOutputNumber, ((figure.name, figure.label) for figure in figures))

    def add_outputs(self, output_type: Any, outputs: Iterable[tuple[str, str]]) -> None:
        """One output of ``output_type`` (e.g. ``QgsProcessingOutputString``) per ``(name, label)``."""
        for name, label in outputs:
            self.addOutput(output_type(name, self.tr(label)))


class ParameterValues:
    """The parameter values of one run of an algorithm, read by name (``values.integer(self.BAND)``).

    Built once per run by :meth:`.base.SarAlgorithm.processAlgorithm` from the run's parameters
    and context; each reading states what it expects and says what to change when it is wrong.
    """

    def __init__(
        self, algorithm: QgsProcessingAlgorithm, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> None:
        self.algorithm = algorithm
        self.parameters = parameters
        self.context = context

    def is_set(self, name: str) -> bool:
        """Whether the run gives a value for ``name`` (an empty string counts as not set)."""
        return self.parameters.get(name) not in (None, "")

    def integer(self, name: str) -> int:
        return self.algorithm.parameterAsInt(self.parameters, name, self.context)

    def integers(self, name: str) -> list[int]:
        return [int(v) for v in self.algorithm.parameterAsInts(self.parameters, name, self.context)]

    def number(self, name: str) -> float:
        return self.algorithm.parameterAsDouble(self.parameters, name, self.context)

    def boolean(self, name: str) -> bool:
        return self.algorithm.parameterAsBoolean(self.parameters, name, self.context)

    def file(self, name: str) -> str:
        return self.algorithm.parameterAsFile(self.parameters, name, self.context)

    def crs(self, name: str) -> QgsCoordinateReferenceSystem:
        return self.algorithm.parameterAsCrs(self.parameters, name, self.context)

    def enum(self, name: str, options: Sequence[str]) -> str:
        """The option chosen for an enum parameter."""
        return options[self.algorithm.parameterAsEnum(self.parameters, name, self.context)]

    def band_input(self, names: BandInput) -> tuple[str, int, str]:
        """The parameters of :meth:`ParameterHelpers.add_band_input`: (raster path, band, kind)."""
        return self.raster(names.raster), self.integer(names.band), self.enum(names.kind, names.kinds)

    def optional_file(self, name: str) -> str | None:
        """Path of an optional file parameter, None when not set."""
        return self.file(name) or None

    def file_output(self, name: str) -> str:
        """Path of a file destination (as given)."""
        return self.algorithm.parameterAsFileOutput(self.parameters, name, self.context)

    def optional_file_output(self, name: str) -> str | None:
        """Path of an optional file destination, None when not set."""
        return self.file_output(name) or None

    def optional_destination(self, name: str, suffix: str) -> str | None:
        """An optional file or vector destination ending in ``suffix`` (the format written), else None."""
        if not self.parameters.get(name):
            return None
        definition = self.algorithm.parameterDefinition(name)
        if isinstance(definition, (QgsProcessingParameterVectorDestination,
                                   QgsProcessingParameterRasterDestination)):  # a layer, loaded at the end
            path = self.algorithm.parameterAsOutputLayer(self.parameters, name, self.context)
        else:
            path = self.file_output(name)
        if not path:
            return None
        return path if Path(path).suffix.lower() == suffix else str(Path(path).with_suffix(suffix))

    def file_outputs(self, outputs: Iterable[FileOutput]) -> dict[str, str | None]:
        """The paths of :meth:`ParameterHelpers.add_file_outputs` outputs, by name (None: not asked for)."""
        return {output.name: self.optional_destination(output.name, output.suffix) for output in outputs}

    def raster(self, name: str) -> str:
        """Path of a file-based (GDAL) raster layer parameter."""
        layer = self.algorithm.parameterAsRasterLayer(self.parameters, name, self.context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(
                f"{name}: could not open the raster layer {self.parameters.get(name)!r}. "
                "Choose an existing raster file."
            )
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                f"{name}: layer '{layer.name()}' is not a file-based raster (provider "
                f"'{layer.providerType()}'). Save it as a GeoTIFF first."
            )
        return layer.source().split("|")[0]

    def source_name(self, name: str) -> str:
        """What the input ``name`` is called: its layer's name (as in the Layers panel), else its file name
        without the suffix."""
        if isinstance(self.algorithm.parameterDefinition(name), QgsProcessingParameterRasterLayer):
            layer = self.algorithm.parameterAsRasterLayer(self.parameters, name, self.context)
            if layer is not None and layer.name():
                return str(layer.name())
        return Path(str(self.parameters.get(name) or name)).stem

    def name_output_layer(self, path: str | None, layer_name: str) -> None:
        """Name the layer QGIS loads from ``path`` when the run ends (nothing when ``path`` is None or
        not loaded). Without it QGIS names a temporary output after its parameter's label ("Output"),
        the same for every run; a file output keeps its file name when QGIS prefers file names (its
        default)."""
        if path and self.context.willLoadLayerOnCompletion(path):
            self.context.layerToLoadOnCompletionDetails(path).name = layer_name

    def output_raster(self, name: str) -> str:
        """Path of a raster destination parameter; the engine writes GeoTIFF only."""
        path = self.algorithm.parameterAsOutputLayer(self.parameters, name, self.context)
        if not path:
            raise QgsProcessingException(f"{name}: choose an output file.")
        if Path(path).suffix.lower() not in {".tif", ".tiff"}:
            raise QgsProcessingException(
                f"{name}: '{path}' is not a GeoTIFF path. Choose a file ending in .tif."
            )
        return path
