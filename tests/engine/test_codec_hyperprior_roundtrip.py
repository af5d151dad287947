"""Encode -> .sarz v5 -> decode with a hyperprior attached to the tiny codec (random IntNets, no trained
weights): exact latents, determinism across ONNX Runtime settings, refusals, old files still decoding."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.codec import fileformat
from engine.codec.decode import decode_latents, decompress_file
from engine.codec.encode import compress_raster
from engine.codec.hyperprior import HyperpriorModel
from engine.codec.models import MODELS_ENV, find_decoder
from engine.errors import CompressedFileError, InputError, ModelError
from engine.runtime import OPTIMISATION_ENV, THREADS_ENV
from tests.conftest import write_test_geotiff
from tests.engine.test_codec_roundtrip import REPO_ROOT, _decode_digest, read, smooth_db
from tests.engine.tiny_codec import BIASES, DB_MAX, DB_MIN, GAINS, SCALE, build_pair
from tests.engine.tiny_hyperprior import tiny_hyperprior

STEP = 0.5


@pytest.fixture(scope="module")
def hyper_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hyper_models")
    build_pair(folder, "h1", lam="1e7", hyperprior=tiny_hyperprior(latent_step=STEP).to_json())
    build_pair(folder, "r1", lam="1e7")
    return folder


@pytest.fixture(autouse=True)
def _use_models(hyper_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_ENV, str(hyper_models))


def _compress(tmp_path: Path, db: np.ndarray, rate: str = "h1", name: str = "c.sarz",
              **kwargs: object) -> Path:
    src = write_test_geotiff(tmp_path / "in.tif", db.astype(np.float32), nodata=float("nan"))
    compress_raster(src, tmp_path / name, input_kind="db", rate=rate, **kwargs)  # type: ignore[arg-type]
    return tmp_path / name


def _version(path: Path) -> int:
    return struct.unpack_from("<H", path.read_bytes(), 8)[0]


def test_latents_round_trip_exactly_through_a_version_5_file(tmp_path: Path) -> None:
    db = smooth_db(128, 160)
    path = _compress(tmp_path, db, post_filter=False)
    cf = fileformat.read_compressed(path)
    assert _version(path) == 5 and cf.header.entropy_model == "hyperprior"
    assert "latent_step" in cf.header.quantisation
    y_hat, model = decode_latents(cf, find_decoder(cf.header.model_id, cf.header.weights_sha256))
    assert isinstance(model, HyperpriorModel) and cf.header.entropy_sha256 == model.sha256()
    # the tiny encoder: y_c = gain_c * (16 x 16 block mean of the normalised input) + bias_c
    x = (db - DB_MIN) / (DB_MAX - DB_MIN)
    means = x.reshape(128 // SCALE, SCALE, 160 // SCALE, SCALE).mean(axis=(1, 3))
    y = GAINS[:, None, None] * means[None] + BIASES[:, None, None]
    assert np.abs(model.dequantise(y_hat) - y).max() <= STEP / 2 + 1e-3  # q = round(y / step - mu)
    decompress_file(path, tmp_path / "d.tif")
    values, _ = read(tmp_path / "d.tif")
    assert np.abs(values - db).mean() < 0.5


def test_restoration_filter_and_bright_pixels_work_with_the_hyperprior(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    db = smooth_db(96, 112) + rng.normal(0.0, 1.5, (96, 112)).astype(np.float32)
    db[40, 50] = 25.0  # above the model's 10 dB
    db[:20, :30] = np.nan
    path = _compress(tmp_path, db)
    cf = fileformat.read_compressed(path)
    assert cf.header.post_filter, "with lambda 1e7 the filter pays for itself on this scene"
    assert cf.exceptions
    decompress_file(path, tmp_path / "d.tif")
    values, profile = read(tmp_path / "d.tif")
    assert values[40, 50] == pytest.approx(25.0, abs=0.01)
    assert np.all(values[:20, :30] == profile["nodata"]) and np.all(values[20:] != profile["nodata"])


@pytest.mark.parametrize(("threads", "level"), [("1", "disable"), ("2", "all"), ("1", "basic")])
def test_decoded_bits_do_not_depend_on_threads_or_graph_optimisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: str, level: str,
) -> None:
    db = smooth_db(80, 96, seed=2) + np.random.default_rng(0).normal(0, 2, (80, 96)).astype(np.float32)
    path = _compress(tmp_path, db, post_filter=False)
    cf = fileformat.read_compressed(path)
    decompress_file(path, tmp_path / "default.tif")
    latents, _ = decode_latents(cf, find_decoder(cf.header.model_id, cf.header.weights_sha256))
    monkeypatch.setenv(THREADS_ENV, threads)
    monkeypatch.setenv(OPTIMISATION_ENV, level)
    decompress_file(path, tmp_path / "other.tif")
    again, _ = decode_latents(cf, find_decoder(cf.header.model_id, cf.header.weights_sha256))
    np.testing.assert_array_equal(again, latents)  # the entropy decoding is exact everywhere
    other, default = read(tmp_path / "other.tif")[0], read(tmp_path / "default.tif")[0]
    if level == "all":  # the default level: the decoder network's pixels are bit-identical too
        assert other.tobytes() == default.tobytes()
    else:  # other graph rewrites change float rounding in the (float) decoder network, never the latents
        assert np.abs(other - default).max() <= 1e-4


def test_another_process_with_single_threaded_blas_decodes_the_same_bits(tmp_path: Path,
                                                                        hyper_models: Path) -> None:
    """A fresh process with one BLAS and one ONNX Runtime thread decodes the same pixels (the integer
    nets' sums are exact whatever order a BLAS adds them in)."""
    db = smooth_db(64, 80, seed=5) + np.random.default_rng(5).normal(0, 2, (64, 80)).astype(np.float32)
    path = _compress(tmp_path, db, post_filter=False)
    first = _decode_digest(path, tmp_path / "a.tif")
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from tests.engine.test_codec_roundtrip import _decode_digest; from pathlib import Path;"
        "print(json.dumps(_decode_digest(Path(sys.argv[2]), Path(sys.argv[3]))))"
    )
    env = {"PATH": "/usr/bin:/bin", MODELS_ENV: str(hyper_models), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", THREADS_ENV: "1"}
    done = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT), str(path), str(tmp_path / "b.tif")],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == first


def test_an_unknown_optimisation_level_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                  hyper_models: Path) -> None:
    monkeypatch.setenv(OPTIMISATION_ENV, "fastest")
    with pytest.raises(InputError, match=r"SAR_TOOLBOX_ORT_OPTIMISATION.*disable, basic, extended, all"):
        find_decoder("sarcodec-h1", "", decoder_path=hyper_models / "sarcodec-h1-decoder.onnx")


def test_corrupted_side_information_is_caught_and_nothing_is_written(tmp_path: Path) -> None:
    path = _compress(tmp_path, smooth_db(64, 64), post_filter=False)
    data = bytearray(path.read_bytes())
    payload_at = data.index(fileformat.read_compressed(path).payload)
    data[payload_at + 4] ^= 0x10  # the first range-coder word: the side information z of strip 1
    path.write_bytes(bytes(data))
    with pytest.raises(CompressedFileError, match="corrupted"):
        decompress_file(path, tmp_path / "d.tif")
    assert not (tmp_path / "d.tif").exists()


def test_a_decoder_with_another_hyperprior_is_refused(tmp_path: Path, hyper_models: Path) -> None:
    other = tmp_path / "other"
    build_pair(other, "h1", hyperprior=tiny_hyperprior(latent_step=STEP).to_json(),
               decoder_hyperprior=tiny_hyperprior(latent_step=STEP, seed=9).to_json())
    path = _compress(tmp_path, smooth_db(32, 32), post_filter=False)
    with pytest.raises(CompressedFileError, match="another entropy model"):
        decompress_file(path, tmp_path / "d.tif", decoder_path=other / "sarcodec-h1-decoder.onnx")
    factorised = _compress(tmp_path, smooth_db(32, 32), rate="r1", name="r.sarz", post_filter=False)
    build_pair(other, "x", model_id="sarcodec-r1", hyperprior=tiny_hyperprior(latent_step=STEP).to_json())
    with pytest.raises(CompressedFileError, match=r"coded with a factorised entropy model.*hyperprior"):
        decompress_file(factorised, tmp_path / "d.tif", decoder_path=other / "sarcodec-x-decoder.onnx")
    assert not (tmp_path / "d.tif").exists()


@pytest.mark.parametrize(("hyperprior", "message"), [
    (lambda: tiny_hyperprior(channels=5, slices=(0, 5)).to_json(), "hyperprior codes 5 latent channels"),
    (lambda: json.dumps({**tiny_hyperprior().to_dict(), "slices": [0, 1, 3]}),
     "analysis takes 4 channels, the latents have 3"),
])
def test_a_model_whose_hyperprior_and_prior_do_not_match_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hyperprior: object, message: str,
) -> None:
    folder = tmp_path / "bad"
    build_pair(folder, "h9", hyperprior=hyperprior())  # type: ignore[operator]
    monkeypatch.setenv(MODELS_ENV, str(folder))
    with pytest.raises(ModelError, match="hyperprior and prior do not match") as caught:
        _compress(tmp_path, smooth_db(32, 32), rate="h9")
    assert message in str(caught.value)
    assert not (tmp_path / "c.sarz").exists()


def test_optimised_quantisation_is_refused_for_a_hyperprior_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not apply to 'sarcodec-h1'.*hyperprior.*r1, r2, r3"):
        _compress(tmp_path, smooth_db(32, 32), rdo=True)
    assert not (tmp_path / "c.sarz").exists()


def _recrc(data: bytearray) -> bytes:
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])) & 0xFFFFFFFF)
    return bytes(data)


def test_newer_versions_and_inconsistent_versions_are_refused(tmp_path: Path) -> None:
    data = bytearray(_compress(tmp_path, smooth_db(32, 32), post_filter=False).read_bytes())
    newer = fileformat.FORMAT_VERSION + 1
    struct.pack_into("<H", data, 8, newer)
    with pytest.raises(CompressedFileError, match=rf"format version {newer}.*newer.*update the SAR Toolbox"):
        fileformat.unpack(_recrc(data))
    struct.pack_into("<H", data, 8, 4)  # a version 4 file cannot hold a hyperprior payload
    with pytest.raises(CompressedFileError, match="version 4 but a hyperprior payload"):
        fileformat.unpack(_recrc(data))


def test_factorised_files_are_still_written_as_version_4_and_decode(tmp_path: Path) -> None:
    db = smooth_db(48, 64)
    path = _compress(tmp_path, db, rate="r1")
    assert _version(path) == 4
    cf = fileformat.read_compressed(path)
    assert cf.header.entropy_model == "factorised"
    assert "entropy_model" not in json.loads(cf.header.to_json())  # the header of release 4, as it was
    decompress_file(path, tmp_path / "d.tif")
    values, _ = read(tmp_path / "d.tif")
    assert np.abs(values - db).mean() < 0.5


def test_the_filter_fit_on_the_encoder_s_own_latents_gives_the_file_decoding_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 25.3: with a hyperprior the sampled fit takes ``y_hat`` from the encoder; same bytes."""
    from engine.codec import encode, fit_filter

    monkeypatch.setattr(fit_filter, "FIT_SAMPLE_PIXELS", 160 * 192 // 3)
    monkeypatch.setattr(fit_filter, "MIN_SAMPLED_PIXELS", 100)
    db = smooth_db(160, 192)
    used: list[object] = []
    real_tile = fit_filter.SampledLatents.tile

    def spy(self: fit_filter.SampledLatents, t: Any) -> np.ndarray:
        used.append(t)
        return real_tile(self, t)

    monkeypatch.setattr(fit_filter.SampledLatents, "tile", spy)
    own = _compress(tmp_path, db, name="own.sarz")
    assert used, "the fit did not use the encoder's latents"
    monkeypatch.setattr(encode, "_fit_sample", lambda job: None)
    decoded = _compress(tmp_path, db, name="decoded.sarz")
    assert fileformat.read_compressed(own).header.entropy_model == "hyperprior"
    assert own.read_bytes() == decoded.read_bytes()
