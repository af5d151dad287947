"""The codec models shipped in models/: each loads with the engine's checks and has its card; every
installed rate point has its place in the fixed RATE option order (QGIS enum indices stay stable); the
retired h5 (jointly fine-tuned h1) still codes a raster given as a custom encoder, and its files decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.models import MODELS_ENV, bundled_codec, load_encoder, shipped_rates
from engine.codec.quality.metrics import psnr
from engine.codec.rate_choice import RATE_OPTIONS, RETIRED
from tests.conftest import write_test_geotiff
from tests.engine.test_codec_roundtrip import REPO_ROOT, read, smooth_db

MODELS = REPO_ROOT / "models"


@pytest.fixture(autouse=True)
def _bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODELS_ENV, raising=False)


def test_rate_points_keep_their_order() -> None:
    rates = shipped_rates(MODELS, retired=True)
    if not rates:
        pytest.skip("no codec models in models/")
    assert RATE_OPTIONS[:6] == ("r1", "r2", "r3", "h1", "h4", "h5")  # indices of scripts and models
    assert set(rates) <= set(RATE_OPTIONS)
    assert not set(RETIRED) & set(shipped_rates(MODELS)), "retired points are not offered as shipped"


@pytest.mark.parametrize("rate", shipped_rates(MODELS, retired=True) or ["none"])
def test_every_shipped_codec_loads_and_has_a_card(rate: str) -> None:
    if rate == "none":
        pytest.skip("no codec models in models/")
    enc, dec = bundled_codec(rate, MODELS)
    meta = load_encoder(enc).metadata  # the engine's own checks of the codec metadata
    assert meta.model_id == f"sarcodec-{rate}" and dec.is_file()
    assert (MODELS / f"sarcodec-{rate}.md").is_file()


def test_retired_h5_is_a_fine_tuned_h1_and_its_files_decode(tmp_path: Path) -> None:
    if "h5" not in shipped_rates(MODELS, retired=True):
        pytest.skip("sarcodec-h5 not installed")
    meta = load_encoder(MODELS / "sarcodec-h5-encoder.onnx").metadata
    h1 = load_encoder(MODELS / "sarcodec-h1-encoder.onnx").metadata
    assert "hyperprior" in meta.extra and meta.extra["transform"] == "sarcodec-h5-transform"
    assert meta.weights_sha256 != h1.weights_sha256
    db = smooth_db(96, 112)
    src = write_test_geotiff(tmp_path / "in.tif", db.astype(np.float32), nodata=float("nan"))
    result = compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate=None,
                             encoder_path=MODELS / "sarcodec-h5-encoder.onnx", post_filter=False)
    assert result.model_id == "sarcodec-h5"
    decompress_file(tmp_path / "c.sarz", tmp_path / "d.tif")
    out, _ = read(tmp_path / "d.tif")
    assert out.shape == db.shape
    assert psnr(np.clip(db, meta.db_min, meta.db_max), out, peak=meta.db_max - meta.db_min) > 20.0
