"""ONNX runtime wrapper: providers, threads, metadata validation, bad model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DependencyError, InputError, ModelError
from engine.metadata import METADATA_KEY, Task
from engine.runtime import OnnxModel, available_providers, default_providers, read_metadata
from training.onnx_io import identity_metadata


def onnx_identity(path: Path, props: dict[str, str], channels: int = 1) -> Path:
    """An Identity graph with arbitrary metadata_props (no validation)."""
    import onnx
    from onnx import TensorProto, helper

    shape = ["n", channels, "h", "w"]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def good_props(**changes: object) -> dict[str, str]:
    data = identity_metadata().to_dict()
    data.update(changes)
    return {METADATA_KEY: json.dumps(data)}


def test_identity_model_runs_on_cpu(identity_model: Path) -> None:
    model = OnnxModel(identity_model, intra_op_threads=1)
    assert model.provider == "CPUExecutionProvider"
    assert model.metadata.task is Task.IDENTITY and model.metadata.tile_size == 32
    x = np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(model.run(x), x)
    assert model.describe()["provider"] == model.provider
    assert "identity" in repr(model)
    assert read_metadata(identity_model) == model.metadata


def test_provider_choice_prefers_cuda_when_available() -> None:
    available = available_providers()
    assert "CPUExecutionProvider" in available
    chosen = default_providers()
    assert chosen[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in chosen) == ("CUDAExecutionProvider" in available)


def test_unavailable_provider_names_the_package(identity_model: Path) -> None:
    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("CUDA is available here")
    with pytest.raises(InputError, match="onnxruntime-gpu"):
        OnnxModel(identity_model, providers=["CUDAExecutionProvider"])


def test_wrong_batch_shape(identity_model: Path) -> None:
    model = OnnxModel(identity_model)
    with pytest.raises(InputError, match="1 input band"):
        model.run(np.zeros((1, 2, 8, 8), np.float32))


def test_model_without_metadata(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no SAR Toolbox metadata"):
        OnnxModel(onnx_identity(tmp_path / "bare.onnx", {}))


def test_model_with_invalid_json_metadata(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not valid JSON"):
        OnnxModel(onnx_identity(tmp_path / "bad.onnx", {METADATA_KEY: "{oops"}))


def test_model_with_incomplete_metadata(tmp_path: Path) -> None:
    data = identity_metadata().to_dict()
    del data["tile_size"]
    with pytest.raises(ModelError, match="lacks tile_size"):
        OnnxModel(onnx_identity(tmp_path / "partial.onnx", {METADATA_KEY: json.dumps(data)}))


def test_model_with_invalid_metadata_values(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="overlap"):
        OnnxModel(onnx_identity(tmp_path / "o.onnx", good_props(overlap=64, tile_size=32)))
    with pytest.raises(ModelError, match="invalid value"):
        OnnxModel(onnx_identity(tmp_path / "t.onnx", good_props(task="despeckle")))


def test_model_of_the_wrong_task(identity_model: Path) -> None:
    with pytest.raises(ModelError, match="needs a 'translate' model"):
        OnnxModel(identity_model, tasks=[Task.TRANSLATE])


def test_channels_disagree_with_metadata(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="2 input channel"):
        OnnxModel(onnx_identity(tmp_path / "c.onnx", good_props(), channels=2))


def test_missing_onnxruntime_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(DependencyError, match=r"pip install.*'onnxruntime>="):
        available_providers()


def test_thread_count_from_the_environment(identity_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runtime import THREADS_ENV, OnnxModel

    monkeypatch.setenv(THREADS_ENV, "1")
    assert OnnxModel(identity_model).session.get_session_options().intra_op_num_threads == 1
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(InputError, match=THREADS_ENV):
        OnnxModel(identity_model)


def test_threads_do_not_spin_unless_asked(identity_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25.3: spinning threads burn the CPU time of shared cores."""
    from engine.runtime import SPINNING_ENV, OnnxModel

    def spinning() -> str:
        options = OnnxModel(identity_model).session.get_session_options()
        try:
            return str(options.get_session_config_entry("session.intra_op.allow_spinning"))
        except RuntimeError:  # not set: onnxruntime's default, spinning
            return "default"

    monkeypatch.delenv(SPINNING_ENV, raising=False)
    assert spinning() == "0"
    monkeypatch.setenv(SPINNING_ENV, "1")
    assert spinning() != "0"
    monkeypatch.setenv(SPINNING_ENV, "yes")
    with pytest.raises(InputError, match=SPINNING_ENV):
        OnnxModel(identity_model)


def test_providers_from_the_environment(identity_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runtime import PROVIDERS_ENV

    monkeypatch.setenv(PROVIDERS_ENV, "CPUExecutionProvider")
    assert default_providers() == ["CPUExecutionProvider"]
    assert OnnxModel(identity_model).provider == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in available_providers():
        monkeypatch.setenv(PROVIDERS_ENV, "CUDAExecutionProvider")
        with pytest.raises(InputError, match="onnxruntime-gpu"):
            OnnxModel(identity_model)


def test_cuda_provider_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.runtime import CUDA_DEVICE_ENV, provider_options

    monkeypatch.setenv(CUDA_DEVICE_ENV, "1")
    cuda, cpu = provider_options(["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert cpu == {}
    assert cuda["device_id"] == "1" and cuda["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    monkeypatch.setenv(CUDA_DEVICE_ENV, "gpu0")
    with pytest.raises(InputError, match=CUDA_DEVICE_ENV):
        provider_options(["CUDAExecutionProvider"])


def test_metadata_is_read_without_a_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 10: looking for the embedding model among the shipped ones reads each file's metadata
    without starting an ONNX Runtime session (the same metadata a session reads); a damaged file is
    refused as before."""
    import shutil

    import onnxruntime

    from engine.registration.shift.deep import find_embed_model

    models = Path(__file__).resolve().parents[2] / "models"
    shipped = [models / "regembed-guided-v3.onnx", models / "sarcodec-r1-decoder.onnx"]
    sessions = {path: OnnxModel(path, intra_op_threads=1).metadata for path in shipped}
    for path in shipped:
        shutil.copy(path, tmp_path)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(shipped[0].read_bytes()[:5000])
    (tmp_path / "text.onnx").write_text("not onnx")

    def no_session(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an ONNX Runtime session was started")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    for path, meta in sessions.items():
        assert read_metadata(path) == meta
    assert find_embed_model(tmp_path) == tmp_path / "regembed-guided-v3.onnx"
    for bad in (cut, tmp_path / "text.onnx"):
        with pytest.raises(ModelError, match="not a valid ONNX model"):
            read_metadata(bad)
    with pytest.raises(InputError, match="does not exist"):
        read_metadata(tmp_path / "missing.onnx")
