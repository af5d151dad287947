"""The codec models shipped in models/: each loads with the engine's checks and has its card; the rate
points keep their order (a new one is appended, so QGIS enum indices stay stable); the jointly fine-tuned
h5 codes a raster through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.models import DEFAULT_RATES, MODELS_ENV, bundled_codec, load_encoder, shipped_rates
from engine.quality import psnr
from tests.conftest import write_test_geotiff
from tests.engine.test_codec_roundtrip import REPO_ROOT, read, smooth_db

MODELS = REPO_ROOT / "models"


@pytest.fixture(autouse=True)
def _bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODELS_ENV, raising=False)


def test_rate_points_keep_their_order() -> None:
    rates = shipped_rates(MODELS)
    if not rates:
        pytest.skip("no codec models in models/")
    extra = [r for r in rates if r not in DEFAULT_RATES]
    assert extra == sorted(extra)
    if "h5" in rates:
        assert extra.index("h5") == len(extra) - 1, "h5 comes after the rate points shipped before it"


@pytest.mark.parametrize("rate", shipped_rates(MODELS) or ["none"])
def test_every_shipped_codec_loads_and_has_a_card(rate: str) -> None:
    if rate == "none":
        pytest.skip("no codec models in models/")
    enc, dec = bundled_codec(rate, MODELS)
    meta = load_encoder(enc).metadata  # the engine's own checks of the codec metadata
    assert meta.model_id == f"sarcodec-{rate}" and dec.is_file()
    assert (MODELS / f"sarcodec-{rate}.md").is_file()


def test_h5_is_a_fine_tuned_h1_and_codes_a_raster(tmp_path: Path) -> None:
    if "h5" not in shipped_rates(MODELS):
        pytest.skip("sarcodec-h5 not shipped")
    meta = load_encoder(MODELS / "sarcodec-h5-encoder.onnx").metadata
    h1 = load_encoder(MODELS / "sarcodec-h1-encoder.onnx").metadata
    assert "hyperprior" in meta.extra and meta.extra["transform"] == "sarcodec-h5-transform"
    assert meta.weights_sha256 != h1.weights_sha256
    db = smooth_db(96, 112)
    src = write_test_geotiff(tmp_path / "in.tif", db.astype(np.float32), nodata=float("nan"))
    compress_raster(src, tmp_path / "c.sarz", input_kind="db", rate="h5", post_filter=False)
    decompress_file(tmp_path / "c.sarz", tmp_path / "d.tif")
    out, _ = read(tmp_path / "d.tif")
    assert out.shape == db.shape
    assert psnr(np.clip(db, meta.db_min, meta.db_max), out, peak=meta.db_max - meta.db_min) > 20.0
