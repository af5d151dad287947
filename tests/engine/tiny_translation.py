"""A tiny translation model built with onnx.helper (no torch) for the engine and plugin tests.

The graph is a 1 x 1 convolution from the normalised SAR band to three channels followed by
tanh: ``rgb_c = tanh(GAINS_c * x + BIASES_c)``, so every output pixel has a known value
(``x`` = the engine's min-max normalised dB) and tile blending must reproduce it exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.metadata import InputTransform, ModelMetadata, Normalisation, Task

GAINS = np.array([2.0, -1.0, 0.5], dtype=np.float32)
BIASES = np.array([-1.0, 0.5, 0.0], dtype=np.float32)
DB_MIN, DB_MAX = -30.0, 5.0
TILE, OVERLAP = 32, 8


def tiny_metadata(task: Task = Task.TRANSLATE) -> ModelMetadata:
    return ModelMetadata(
        task=task,
        model_id="tiny-translation",
        weights_sha256="a" * 64,
        input_bands=1,
        input_transform=InputTransform.INTENSITY_TO_DB,
        normalisation=Normalisation.MINMAX,
        db_min=DB_MIN,
        db_max=DB_MAX,
        tile_size=TILE,
        overlap=OVERLAP,
        output_meaning="test RGB in [-1, 1]",
    )


def build_tiny_translation(path: Path, task: Task = Task.TRANSLATE) -> Path:
    """Write the tiny model (with ``task`` in its metadata) to ``path``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(GAINS.reshape(3, 1, 1, 1), "w")
    b = numpy_helper.from_array(BIASES, "b")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["z"]), helper.make_node("Tanh", ["z"], ["rgb"])],
        "tiny_translation",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in tiny_metadata(task).to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def expected_display(intensity: np.ndarray) -> np.ndarray:
    """What the tiny model must give, as display RGB in [0, 1] (``(3, H, W)``), for linear intensity."""
    with np.errstate(divide="ignore", invalid="ignore"):
        db = np.maximum(10 * np.log10(intensity.astype(np.float64)), -40.0)
    x = (np.clip(db, DB_MIN, DB_MAX) - DB_MIN) / (DB_MAX - DB_MIN)
    y = np.tanh(GAINS[:, None, None] * x[None] + BIASES[:, None, None])
    return (y + 1) / 2
