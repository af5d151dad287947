"""Model metadata: the typed, versioned contract stored inside every ONNX file.

Training export writes it into the ONNX ``metadata_props`` (one key,
:data:`METADATA_KEY`, holding JSON); the engine reads and validates it before
running a model. A model without valid metadata is refused with an error that
says what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from .errors import ModelError

NOISE_FLOOR_DB = -40.0
"""Default floor of the dB conversion (intensity 1e-4): zeros and tiny values become this, not -inf."""

SCHEMA_VERSION = 1
METADATA_KEY = "sar_toolbox.metadata"
INTEGER_FIELDS = ("input_bands", "tile_size", "overlap", "scale_factor", "latent_channels", "schema_version")


class Task(StrEnum):
    """What a model does; the engine refuses a model of the wrong task."""

    COMPRESS_ENCODER = "compress-encoder"
    COMPRESS_DECODER = "compress-decoder"
    EMBED = "embed"
    SHIFT_REGRESS = "shift-regress"
    KEYPOINTS = "keypoints"
    TRANSLATE = "translate"
    IDENTITY = "identity"  # diagnostics and benchmarks of the tiled pipeline


class InputTransform(StrEnum):
    """How raw pixel values become the model's input domain (before normalisation)."""

    INTENSITY_TO_DB = "intensity-to-db"
    AMPLITUDE_TO_DB = "amplitude-to-db"
    DB = "db"  # the input already is in dB
    NONE = "none"  # values are used as they are (optical, diagnostics)


class Normalisation(StrEnum):
    """How model-domain values are scaled before they enter the network."""

    MINMAX = "minmax"  # (x - db_min) / (db_max - db_min), clipped to [0, 1]
    STANDARD = "standard"  # (x - mean) / std
    NONE = "none"


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the engine must know to run a model correctly.

    Attributes:
        task: what the model does.
        model_id: stable human-readable identifier, e.g. ``"sarcodec-b-r1"``.
        weights_sha256: SHA-256 of the trained weights the file was exported from.
        input_bands: number of input channels the network expects.
        input_transform: raw value -> model domain (dB conversion or none).
        normalisation: model domain -> network input scaling.
        db_min, db_max: clip/min-max range (required for ``MINMAX``).
        mean, std: standardisation parameters (required for ``STANDARD``).
        noise_floor_db: values below this (and invalid ones) are floored/masked.
        tile_size: side of the square tile the model was trained on.
        overlap: overlap between neighbouring tiles, >= the receptive field margin.
        scale_factor: input pixels per output pixel (latent stride); 1 for dense maps.
        latent_channels: channels of the latent/embedding output (0 if not relevant).
        output_meaning: free text describing the output tensor.
        schema_version: version of this contract.
        extra: task-specific string parameters (e.g. entropy-model tables).
    """

    task: Task
    model_id: str
    weights_sha256: str
    input_bands: int
    input_transform: InputTransform
    normalisation: Normalisation
    tile_size: int
    overlap: int
    scale_factor: int = 1
    latent_channels: int = 0
    db_min: float | None = None
    db_max: float | None = None
    mean: float | None = None
    std: float | None = None
    noise_floor_db: float = NOISE_FLOOR_DB
    output_meaning: str = ""
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`ModelError` naming every problem found."""
        problems: list[str] = []
        if self.schema_version != SCHEMA_VERSION:
            problems.append(
                f"schema_version {self.schema_version} is not supported (this engine reads "
                f"version {SCHEMA_VERSION}); re-export the model with this toolbox version"
            )
        if not self.model_id:
            problems.append("model_id is empty")
        if len(self.weights_sha256) != 64 or any(c not in "0123456789abcdef" for c in self.weights_sha256):
            problems.append("weights_sha256 must be 64 lowercase hex digits")
        if self.input_bands < 1:
            problems.append("input_bands must be >= 1")
        if self.tile_size < 1:
            problems.append("tile_size must be >= 1")
        if not 0 <= self.overlap < self.tile_size:
            problems.append("overlap must be >= 0 and smaller than tile_size")
        if self.scale_factor < 1 or self.tile_size % self.scale_factor:
            problems.append("scale_factor must be >= 1 and divide tile_size")
        if self.scale_factor >= 1 and self.overlap % self.scale_factor:
            problems.append("overlap must be a multiple of scale_factor")
        if self.latent_channels < 0:
            problems.append("latent_channels must be >= 0")
        minmax_ok = self.db_min is not None and self.db_max is not None and self.db_max > self.db_min
        if self.normalisation is Normalisation.MINMAX and not minmax_ok:
            problems.append("normalisation 'minmax' needs db_min < db_max")
        standard_ok = self.mean is not None and self.std is not None and self.std > 0
        if self.normalisation is Normalisation.STANDARD and not standard_ok:
            problems.append("normalisation 'standard' needs mean and std > 0")
        if problems:
            raise ModelError(
                f"Model metadata of '{self.model_id or '?'}' is invalid: " + "; ".join(problems) + "."
            )

    def require_task(self, *tasks: Task, source: str = "model") -> None:
        """Raise :class:`ModelError` unless the model's task is one of ``tasks``."""
        if self.task not in tasks:
            wanted = " or ".join(t.value for t in tasks)
            raise ModelError(
                f"{source} is a '{self.task.value}' model (id '{self.model_id}'), but this "
                f"operation needs a '{wanted}' model; choose a model exported for that task."
            )

    # --------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["task"] = self.task.value
        data["input_transform"] = self.input_transform.value
        data["normalisation"] = self.normalisation.value
        return data

    def to_props(self) -> dict[str, str]:
        """Key/value pairs for ONNX ``metadata_props``."""
        return {METADATA_KEY: json.dumps(self.to_dict(), sort_keys=True)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "model") -> ModelMetadata:
        names = {f.name for f in fields(cls)}
        required = {
            f.name
            for f in fields(cls)
            if f.default is MISSING and f.default_factory is MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise ModelError(
                f"{source}: model metadata lacks {', '.join(missing)}; re-export the model "
                "with 'python -m training.<task> export' so the metadata is complete."
            )
        unknown = sorted(set(data) - names)
        if unknown:
            raise ModelError(f"{source}: model metadata has unknown fields {', '.join(unknown)}.")
        kwargs = dict(data)
        try:
            kwargs["task"] = Task(kwargs["task"])
            kwargs["input_transform"] = InputTransform(kwargs["input_transform"])
            kwargs["normalisation"] = Normalisation(kwargs["normalisation"])
        except ValueError as exc:
            raise ModelError(f"{source}: model metadata has an invalid value: {exc}.") from exc
        for name in INTEGER_FIELDS:
            if name in kwargs and (not isinstance(kwargs[name], int) or isinstance(kwargs[name], bool)):
                raise ModelError(f"{source}: model metadata field '{name}' must be an integer.")
        extra = kwargs.get("extra", {})
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise ModelError(f"{source}: model metadata field 'extra' must map strings to strings.")
        try:
            return cls(**kwargs)
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from exc

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> ModelMetadata:
        """Parse ONNX ``metadata_props``; raise :class:`ModelError` if absent or invalid."""
        raw = props.get(METADATA_KEY)
        if raw is None:
            raise ModelError(
                f"{source} has no SAR Toolbox metadata (key '{METADATA_KEY}'); only models "
                "exported by this toolbox's training package can be run."
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source}: SAR Toolbox metadata is not valid JSON ({exc}).") from exc
        if not isinstance(data, dict):
            raise ModelError(f"{source}: SAR Toolbox metadata must be a JSON object.")
        return cls.from_dict(data, source=source)

    def with_updates(self, **changes: Any) -> ModelMetadata:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)
