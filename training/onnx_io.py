"""ONNX helpers shared by every exporter: metadata, weight hashes, the identity model.

Uses the ``onnx`` package only (no torch), so the identity model used by tests
and benchmarks can be built without PyTorch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.metadata import METADATA_KEY, InputTransform, ModelMetadata, Normalisation, Task

IDENTITY_MODEL_ID = "identity-v1"
OPSET = 17


def attach_metadata(onnx_path: str | os.PathLike[str], meta: ModelMetadata) -> Path:
    """Write ``meta`` into the ``metadata_props`` of an existing ONNX file (in place)."""
    import onnx

    path = Path(onnx_path)
    model = onnx.load(str(path))
    props = meta.to_props()
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
    return path


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(value))


def sha256_of_bytes(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_of_state(state: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """SHA-256 of a state dict (names, dtypes, shapes and values, in sorted name order).

    Accepts torch tensors or numpy arrays as values; the same weights always give
    the same hash, independent of insertion order or device.
    """
    items = state.items() if isinstance(state, Mapping) else state
    digest = hashlib.sha256()
    for name, value in sorted(items, key=lambda kv: kv[0]):
        arr = _as_array(value)
        digest.update(name.encode())
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def identity_metadata(bands: int = 1, tile_size: int = 256, overlap: int = 32) -> ModelMetadata:
    """Metadata of the identity model: raw values in, the same values out."""
    return ModelMetadata(
        task=Task.IDENTITY,
        model_id=IDENTITY_MODEL_ID,
        weights_sha256=sha256_of_bytes(b"identity"),
        input_bands=bands,
        input_transform=InputTransform.NONE,
        normalisation=Normalisation.NONE,
        tile_size=tile_size,
        overlap=overlap,
        output_meaning="the input tile, unchanged (pipeline diagnostics and benchmarks)",
    )


def build_identity_model(
    path: str | os.PathLike[str], bands: int = 1, tile_size: int = 256, overlap: int = 32
) -> Path:
    """Write a tiny ONNX Identity graph (dynamic batch/height/width) with IDENTITY metadata."""
    import onnx
    from onnx import TensorProto, helper

    shape: list[Any] = ["batch", bands, "height", "width"]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="sar_toolbox.training")
    model.ir_version = 8
    for key, value in identity_metadata(bands, tile_size, overlap).to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    out = Path(path)
    onnx.save(model, str(out))
    return out


__all__ = [
    "METADATA_KEY",
    "attach_metadata",
    "build_identity_model",
    "identity_metadata",
    "sha256_of_bytes",
    "sha256_of_state",
]
