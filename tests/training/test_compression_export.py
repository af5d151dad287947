"""ONNX export of the SAR codec: contract, metadata, parity through the engine, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from engine.codec.entropy import EntropyModelTable
from engine.metadata import InputTransform, Normalisation, Task
from engine.runtime import OnnxModel
from training.compression.data import Preprocessing
from training.compression.export import export_codec, parity
from training.compression.models import ModelConfig, SarCodec
from training.compression.train import TrainConfig

torch.set_num_threads(1)  # tiny models; no OpenMP thread team to spin on a shared CPU

CFG = TrainConfig(model=ModelConfig("B", (4, 6, 8), 3), pre=Preprocessing(-30.0, 10.0, -30.0))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[SarCodec, Path, Path]:
    torch.manual_seed(0)
    codec = SarCodec(CFG.model)
    # move BatchNorm statistics away from their defaults so folding is exercised
    codec.train()
    with torch.no_grad():
        codec(torch.rand(4, 1, 32, 32), noise=True)
    out = tmp_path_factory.mktemp("models")
    enc, dec = export_codec(codec, CFG, out, "sarcodec-t1", "t1", tile_size=32, overlap=16)
    return codec, enc, dec


def test_files_follow_the_contract(exported: tuple[SarCodec, Path, Path]) -> None:
    _, enc, dec = exported
    assert enc.name == "sarcodec-t1-encoder.onnx" and dec.name == "sarcodec-t1-decoder.onnx"
    e, d = onnx.load(str(enc)), onnx.load(str(dec))
    assert [i.name for i in e.graph.input] == ["x"] and [o.name for o in e.graph.output] == ["y"]
    assert [i.name for i in d.graph.input] == ["y_hat"] and [o.name for o in d.graph.output] == ["x_hat"]
    assert e.opset_import[0].version >= 17
    dims = [dim.dim_param for dim in e.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] and dims[2] and dims[3], "N, H and W must be dynamic"


def test_metadata_is_complete_and_shared_by_the_pair(exported: tuple[SarCodec, Path, Path]) -> None:
    codec, enc, dec = exported
    me, md = OnnxModel(enc).metadata, OnnxModel(dec).metadata
    assert me.task is Task.COMPRESS_ENCODER and md.task is Task.COMPRESS_DECODER
    assert me.model_id == md.model_id == "sarcodec-t1"
    assert me.weights_sha256 == md.weights_sha256
    assert me.input_transform is InputTransform.DB and me.normalisation is Normalisation.MINMAX
    assert (me.db_min, me.db_max, me.noise_floor_db) == (-30.0, 10.0, -30.0)
    assert me.scale_factor == 16 and me.latent_channels == 3 and me.tile_size == 32
    assert md.extra["rate_point"] == "t1" and md.extra["architecture"] == "B"
    assert float(md.extra["lambda"]) == CFG.loss.lmbda
    table = EntropyModelTable.from_json(md.extra["entropy_model"])
    assert table.channels == 3
    assert np.allclose(table.medians_array(), codec.prior.medians().numpy(), atol=1e-5)


def test_onnx_through_engine_matches_pytorch(exported: tuple[SarCodec, Path, Path]) -> None:
    codec, enc, dec = exported
    d_enc, d_dec = parity(codec, enc, dec, seed=5)
    assert d_enc < 1e-4 and d_dec < 1e-4


@pytest.mark.slow
def test_variant_d_exports_with_parity(tmp_path: Path) -> None:
    torch.manual_seed(1)
    cfg = TrainConfig(model=ModelConfig("D", (4, 6, 8), 16), pre=CFG.pre)
    codec = SarCodec(cfg.model)
    with torch.no_grad():  # leave the initial state, so the nonlinear branch contributes
        for p in codec.parameters():
            p.add_(0.01 * torch.randn_like(p))
    enc, dec = export_codec(codec, cfg, tmp_path, "sarcodec-t2", "t2", tile_size=32, overlap=16)
    assert OnnxModel(dec).metadata.extra["architecture"] == "D"
    d_enc, d_dec = parity(codec, enc, dec, seed=6)
    assert d_enc < 1e-4 and d_dec < 1e-4


def test_entropy_table_codes_the_model_latents_losslessly(exported: tuple[SarCodec, Path, Path]) -> None:
    codec, _, dec = exported
    table = EntropyModelTable.from_json(OnnxModel(dec).metadata.extra["entropy_model"])
    with torch.no_grad():
        y = codec.encoder(torch.rand(1, 1, 64, 64))[0].numpy()
    q = table.quantise(y)
    assert np.array_equal(table.decode(table.encode(q), q.shape), q)


def test_export_is_deterministic(exported: tuple[SarCodec, Path, Path], tmp_path: Path) -> None:
    codec, enc, dec = exported
    enc2, dec2 = export_codec(codec, CFG, tmp_path, "sarcodec-t1", "t1", tile_size=32, overlap=16)
    assert enc2.read_bytes() == enc.read_bytes()
    assert dec2.read_bytes() == dec.read_bytes()


def test_failed_parity_writes_nothing(
    exported: tuple[SarCodec, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.compression.export as export_mod

    codec = exported[0]
    monkeypatch.setattr(export_mod, "parity", lambda *a, **k: (0.0, 1.0))
    with pytest.raises(AssertionError, match="parity failed"):
        export_codec(codec, CFG, tmp_path, "sarcodec-t1", "t1", tile_size=32, overlap=16)
    assert list(tmp_path.iterdir()) == []
