"""Tiny codec model pairs built with onnx.helper (no torch) for the codec tests.

Encoder: 16 x 16 average pooling, then a 1 x 1 convolution to ``C = 4`` latent
channels (``y_c = a_c * mean + b_c``). Decoder: a 1 x 1 convolution reading
channel 0 (``x = y_0 / a_0``), bilinear 16 x upsampling (smooth output), clip to
[0, 1]. Channel 0 carries the picture (quantisation step ``1 / a_0`` in the
normalised domain); channel 1 has a deliberately narrow pmf so escapes occur.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from engine.codec.entropy import EntropyModelTable
from engine.metadata import InputTransform, ModelMetadata, Normalisation, Task

SCALE = 16
GAINS = np.array([60.0, -20.0, 3.0, 0.25], dtype=np.float32)
BIASES = np.array([0.0, 3.0, 0.2, 0.0], dtype=np.float32)
DB_MIN, DB_MAX = -30.0, 10.0


def tiny_table(medians: tuple[float, ...] = (0.0, 0.3, 0.0, 0.0)) -> EntropyModelTable:
    """Prior table of the tiny codec: wide for channel 0, narrow (escapes) for channel 1."""
    wide = np.exp(-0.5 * ((np.arange(0, 61) - 30.0) / 15.0) ** 2)
    narrow = np.array([0.2, 0.6, 0.2])
    small = np.array([0.1, 0.3, 0.4, 0.2])
    single = np.array([1.0])
    return EntropyModelTable.from_pmfs(medians, [0, -1, 0, 0], [wide, narrow, small, single])


def tiny_metadata(
    task: Task,
    model_id: str = "tinycodec-r1",
    weights: bytes = b"tiny",
    table: EntropyModelTable | None = None,
    tile_size: int = 64,
    overlap: int = 32,
    lam: str = "0.01",
    hyperprior: str | None = None,
) -> ModelMetadata:
    """Metadata of the tiny codec; ``hyperprior``: the JSON of an ``extra["hyperprior"]`` to carry."""
    extra = {"rate_point": "r1", "entropy_model": (table or tiny_table()).to_json(), "lambda": lam,
             "architecture": "tiny"}
    if hyperprior is not None:
        extra["hyperprior"] = hyperprior
    return ModelMetadata(
        task=task,
        model_id=model_id,
        weights_sha256=hashlib.sha256(weights).hexdigest(),
        input_bands=1,
        input_transform=InputTransform.DB,
        normalisation=Normalisation.MINMAX,
        db_min=DB_MIN,
        db_max=DB_MAX,
        noise_floor_db=-40.0,
        tile_size=tile_size,
        overlap=overlap,
        scale_factor=SCALE,
        latent_channels=len(GAINS),
        extra=extra,
    )


def _save(graph, path: Path, meta: ModelMetadata) -> Path:  # type: ignore[no-untyped-def]
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_encoder(path: Path, meta: ModelMetadata) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    c = len(GAINS)
    nodes = [
        helper.make_node("AveragePool", ["x"], ["pooled"], kernel_shape=[SCALE, SCALE],
                         strides=[SCALE, SCALE]),
        helper.make_node("Conv", ["pooled", "w", "b"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(GAINS.reshape(c, 1, 1, 1), "w"),
        numpy_helper.from_array(BIASES, "b"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c, "h", "w"])],
        inits,
    )
    return _save(graph, path, meta)


def build_decoder(path: Path, meta: ModelMetadata) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    c = len(GAINS)
    weights = np.zeros((1, c, 1, 1), dtype=np.float32)
    weights[0, 0] = 1.0 / GAINS[0]
    bias = np.array([-BIASES[0] / GAINS[0]], dtype=np.float32)
    nodes = [
        helper.make_node("Conv", ["y_hat", "w", "b"], ["low"]),
        helper.make_node("Resize", ["low", "", "scales"], ["up"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Clip", ["up", "lo", "hi"], ["x_hat"]),
    ]
    inits = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(bias, "b"),
        numpy_helper.from_array(np.array([1, 1, SCALE, SCALE], dtype=np.float32), "scales"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "hi"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_decoder",
        [helper.make_tensor_value_info("y_hat", TensorProto.FLOAT, ["N", c, "h", "w"])],
        [helper.make_tensor_value_info("x_hat", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        inits,
    )
    return _save(graph, path, meta)


def build_pair(folder: Path, rate: str = "r1", model_id: str | None = None, weights: bytes = b"tiny",
               tile_size: int = 64, overlap: int = 32, table: EntropyModelTable | None = None,
               lam: str = "0.01", hyperprior: str | None = None,
               decoder_hyperprior: str | None = None) -> tuple[Path, Path]:
    """Write ``sarcodec-<rate>-{encoder,decoder}.onnx`` into ``folder``; return their paths.

    ``lam`` is the training lambda in the metadata (the restoration filter's rate-distortion trade-off:
    the default is too small for a filter ever to pay for itself on test scenes). ``hyperprior``: the
    JSON of an ``extra["hyperprior"]`` for both models (``decoder_hyperprior``: another one for the
    decoder)."""
    folder.mkdir(parents=True, exist_ok=True)
    model_id = model_id or f"sarcodec-{rate}"
    enc = build_encoder(folder / f"sarcodec-{rate}-encoder.onnx",
                        tiny_metadata(Task.COMPRESS_ENCODER, model_id, weights, table, tile_size=tile_size,
                                      overlap=overlap, lam=lam, hyperprior=hyperprior))
    dec = build_decoder(folder / f"sarcodec-{rate}-decoder.onnx",
                        tiny_metadata(Task.COMPRESS_DECODER, model_id, weights, table, tile_size=tile_size,
                                      overlap=overlap, lam=lam, hyperprior=decoder_hyperprior or hyperprior))
    return enc, dec
