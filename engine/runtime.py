"""ONNX Runtime wrapper: provider choice, threads, validated model metadata.

onnxruntime is imported inside functions so that ``import engine`` works
without it. The CUDA execution provider is used when onnxruntime offers it
(``onnxruntime-gpu``), the CPU provider otherwise; :attr:`OnnxModel.provider`
says which one the session actually runs on.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DependencyError, InputError, ModelError
from .metadata import ModelMetadata, Task

logger = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
"""Execution providers the engine uses, best first (others, e.g. Azure, are ignored)."""


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyError("onnxruntime", "Running ONNX models") from exc
    return onnxruntime


def available_providers() -> list[str]:
    """Execution providers offered by the installed onnxruntime."""
    return list(_onnxruntime().get_available_providers())


PROVIDERS_ENV = "SAR_TOOLBOX_PROVIDERS"
"""Environment variable: comma-separated execution providers to use instead of the default choice
(e.g. ``CUDAExecutionProvider`` to force the GPU in a check, ``CPUExecutionProvider`` to avoid it)."""
CUDA_DEVICE_ENV = "SAR_TOOLBOX_CUDA_DEVICE"
"""Environment variable: the CUDA device id (default 0)."""


def default_providers() -> list[str]:
    """Providers the engine asks for by default: ``SAR_TOOLBOX_PROVIDERS`` when set, else CUDA if
    available, then CPU."""
    forced = [p.strip() for p in os.environ.get(PROVIDERS_ENV, "").split(",") if p.strip()]
    if forced:
        return forced
    available = set(available_providers())
    chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    return chosen or ["CPUExecutionProvider"]


def provider_options(providers: Sequence[str]) -> list[dict[str, str]]:
    """Session options per provider: CUDA on the chosen device, an arena that grows by what is asked
    (tiles of one size repeat, so no power-of-two over-allocation), and an exhaustive cuDNN
    convolution search once per shape (the engine runs many tiles of one shape)."""
    device = os.environ.get(CUDA_DEVICE_ENV, "0").strip() or "0"
    if not device.isdigit():
        raise InputError(f"{CUDA_DEVICE_ENV}={device!r} is not a device number; "
                         "set it to 0, 1, ... or unset it.")
    cuda = {"device_id": device, "arena_extend_strategy": "kSameAsRequested",
            "cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": "1"}
    return [cuda if p == "CUDAExecutionProvider" else {} for p in providers]


THREADS_ENV = "SAR_TOOLBOX_ORT_THREADS"
"""Environment variable: ONNX Runtime intra-op threads per session when a caller does not choose
(set by the batch runner so that several workers on one machine do not oversubscribe its cores)."""


def threads_from_environment() -> int | None:
    """``SAR_TOOLBOX_ORT_THREADS`` as an int, or None when unset or empty."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{THREADS_ENV}={value!r} is not an integer; "
                         "set it to a thread count or unset it.") from None


OPTIMISATION_ENV = "SAR_TOOLBOX_ORT_OPTIMISATION"
"""Environment variable: ONNX Runtime graph optimisation level, ``disable``, ``basic``, ``extended`` or
``all`` (default: onnxruntime's, ``all``); e.g. to check that results do not depend on it."""
_OPTIMISATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                        "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def _set_optimisation_level(ort: Any, options: Any) -> None:
    """Apply ``SAR_TOOLBOX_ORT_OPTIMISATION`` to session ``options`` when it is set."""
    value = os.environ.get(OPTIMISATION_ENV, "").strip().lower()
    if not value:
        return
    if value not in _OPTIMISATION_LEVELS:
        raise InputError(f"{OPTIMISATION_ENV}={value!r} is not an optimisation level; set it to one of "
                         f"{', '.join(_OPTIMISATION_LEVELS)} or unset it.")
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPTIMISATION_LEVELS[value])


SPINNING_ENV = "SAR_TOOLBOX_ORT_SPINNING"
"""Environment variable: ``1`` lets ONNX Runtime's intra-op threads spin while they wait for work
(onnxruntime's default). The engine turns spinning off: on a machine whose cores are shared (QGIS, other
jobs) a spinning thread burns CPU time the others need; decoding tiles of the shipped codec on 2 busy
cores took 25 % less wall time and 30 % less CPU without it (docs/BENCHMARKS.md, codec speed)."""


def _set_spinning(options: Any) -> None:
    """Turn intra-op thread spinning off unless ``SAR_TOOLBOX_ORT_SPINNING=1``."""
    value = os.environ.get(SPINNING_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise InputError(f"{SPINNING_ENV}={value!r} must be 0 or 1; unset it for the default (0).")
    if value != "1":
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")


class OnnxModel:
    """An ONNX model with validated SAR Toolbox metadata.

    Args:
        path: the ``.onnx`` file.
        providers: execution providers to try, best first (default: :func:`default_providers`).
        intra_op_threads: threads per operator (default: onnxruntime's choice).
        tasks: if given, the model's task must be one of these (else :class:`ModelError`).

    Raises:
        InputError: the file does not exist.
        ModelError: not an ONNX model, missing/invalid metadata, wrong task, or a model whose
            input channels disagree with its metadata.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
        tasks: Sequence[Task] | None = None,
    ) -> None:
        ort = _onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"Model file '{self.path}' does not exist; choose an existing .onnx model.")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        _set_optimisation_level(ort, options)
        _set_spinning(options)
        if intra_op_threads is None:
            intra_op_threads = threads_from_environment()
        if intra_op_threads is not None:
            if intra_op_threads < 0:
                raise InputError(f"intra_op_threads must be >= 0 (0 = automatic), got {intra_op_threads}.")
            options.intra_op_num_threads = int(intra_op_threads)
        wanted = list(providers) if providers else default_providers()
        unknown = [p for p in wanted if p not in available_providers()]
        if unknown:
            raise InputError(
                f"Execution provider(s) {', '.join(unknown)} are not available (available: "
                f"{', '.join(available_providers())}); for CUDA install 'onnxruntime-gpu' instead of "
                "'onnxruntime' (make setup GPU=1)."
            )
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=wanted,
                                                provider_options=provider_options(wanted))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(
                f"'{self.path}' is not a valid ONNX model ({exc}); choose a model exported by this toolbox."
            ) from exc
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.metadata = ModelMetadata.from_props(props, source=f"Model '{self.path.name}'")
        if tasks:
            self.metadata.require_task(*tasks, source=f"Model '{self.path.name}'")
        inputs = self.session.get_inputs()
        if not inputs:
            raise ModelError(f"Model '{self.path.name}' has no input; re-export it.")
        self.input_name: str = inputs[0].name
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        shape = inputs[0].shape
        channels = shape[1] if len(shape) == 4 else None
        if len(shape) != 4:
            raise ModelError(
                f"Model '{self.path.name}' takes a {len(shape)}-D input {shape}; the engine feeds "
                "(batch, bands, height, width) tiles. Re-export it with a 4-D input."
            )
        if isinstance(channels, int) and channels != self.input_channels:
            raise ModelError(
                f"Model '{self.path.name}' takes {channels} input channel(s) but its metadata says "
                f"{self.input_channels}; re-export it with matching metadata."
            )
        self.provider: str = self.session.get_providers()[0]
        if wanted[0] != self.provider:
            logger.warning("model %s asked for %s but runs on %s: onnxruntime could not start %s (check that "
                        "the CUDA and cuDNN libraries that onnxruntime-gpu needs are installed and a GPU is "
                        "visible)", self.path.name, wanted[0], self.provider, wanted[0])
        logger.info("loaded model %s (%s) on %s", self.metadata.model_id, self.metadata.task.value,
                 self.provider)

    @property
    def input_channels(self) -> int:
        """Channels of the input tensor: the latent channels for a compression decoder, else the bands."""
        if self.metadata.task is Task.COMPRESS_DECODER:
            return self.metadata.latent_channels
        return self.metadata.input_bands

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, task={self.metadata.task.value}, provider={self.provider})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the first output on a ``(n, bands, h, w)`` float32 batch."""
        return self.run_all(batch)[0]

    def run_all(self, batch: np.ndarray, extra: dict[str, np.ndarray] | None = None,
                outputs: Sequence[str] | None = None) -> list[np.ndarray]:
        """Run the model's outputs (all, or those named) on one batch of its first input.

        ``extra`` feeds the model's other inputs by name (e.g. a keypoint model's ``modality``).
        """
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != self.input_channels:
            raise InputError(
                f"Model '{self.metadata.model_id}' expects (batch, {self.input_channels}, h, w) "
                f"input, got shape {x.shape}; choose {self.input_channels} input band(s)."
            )
        feed = {self.input_name: x, **(extra or {})}
        try:
            return list(self.session.run(list(outputs) if outputs else None, feed))
        except Exception as exc:
            raise ModelError(
                f"Model '{self.metadata.model_id}' failed on a batch of shape {x.shape} ({exc}); check "
                "the tile size against the model card."
            ) from exc

    def describe(self) -> dict[str, Any]:
        """Summary for logs and the environment report."""
        return {
            "path": str(self.path),
            "provider": self.provider,
            "input": self.input_name,
            "outputs": self.output_names,
            "metadata": self.metadata.to_dict(),
        }


def read_metadata(path: str | os.PathLike[str]) -> ModelMetadata:
    """Validated metadata of a model file (for lookups, listings and reports), without an ONNX Runtime
    session: the file's ``metadata_props`` are parsed with protobuf (which onnxruntime requires), the
    graph and weights skipped. Whether the graph loads and fits the metadata is :class:`OnnxModel`'s check."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Model file '{path}' does not exist; choose an existing .onnx model.")
    message = _metadata_message()
    from google.protobuf.message import DecodeError

    try:
        model = message.FromString(path.read_bytes())
    except DecodeError as exc:
        raise ModelError(
            f"'{path}' is not a valid ONNX model ({exc}); choose a model exported by this toolbox.") from exc
    props = {entry.key: entry.value for entry in model.metadata_props}
    return ModelMetadata.from_props(props, source=f"Model '{path.name}'")


@functools.cache
def _metadata_message() -> Any:
    """A protobuf message class that reads only ``metadata_props`` (field 14 of ONNX's ``ModelProto``, a
    list of ``StringStringEntryProto``: key 1, value 2); every other field is skipped."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError as exc:  # pragma: no cover - onnxruntime requires protobuf
        raise DependencyError("onnxruntime", "Reading model metadata") from exc

    proto = descriptor_pb2.FileDescriptorProto(name="sar_toolbox_onnx_metadata.proto",
                                               package="sar_toolbox_onnx", syntax="proto2")
    entry = proto.message_type.add(name="StringStringEntryProto")
    optional, repeated = (descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                          descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)
    string, message = (descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                       descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE)
    entry.field.add(name="key", number=1, type=string, label=optional)
    entry.field.add(name="value", number=2, type=string, label=optional)
    proto.message_type.add(name="ModelProto").field.add(
        name="metadata_props", number=14, type=message, label=repeated,
        type_name=".sar_toolbox_onnx.StringStringEntryProto")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sar_toolbox_onnx.ModelProto"))
