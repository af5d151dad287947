"""engine.registration.keypoints: extraction, registration, outputs and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError, ModelError, RegistrationError
from engine.registration import transforms
from engine.registration.keypoints import warp
from engine.registration.keypoints.api import keypoint_register
from engine.registration.keypoints.classical import ClassicalDetector, describe, sar_gradients, turned_half
from engine.registration.keypoints.detect import extract
from engine.registration.keypoints.register import ImageSide, register_images
from engine.registration.prepare import prepare_image
from engine.run import QUIET
from tests.conftest import FAKE_SHA256, write_test_geotiff


def texture(size: int = 256, seed: int = 0) -> np.ndarray:
    """A scene with corners: random bright and dark rectangles over a smooth background (float32 > 0)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 8) * 3 + 10
    for _ in range(60):
        r, c = rng.integers(0, size - 20, 2)
        h, w = rng.integers(6, 30, 2)
        img[r:r + h, c:c + w] += rng.choice([-4.0, 4.0])
    return np.maximum(ndimage.gaussian_filter(img, 1.0), 0.1).astype(np.float32)


def block_mean(img: np.ndarray) -> np.ndarray:
    h, w = img.shape
    return img.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).astype(np.float32)


# ------------------------------------------------------------------ extraction
def test_turned_half_is_the_descriptor_of_the_patch_turned_by_180_degrees() -> None:
    img = prepare_image(texture(128), "optical")
    gx, gy = sar_gradients(img)
    xy = np.array([[64.5, 60.5], [50.5, 70.5]])
    angle = np.array([0.3, -0.7])
    d = describe(gx, gy, xy, angle)
    np.testing.assert_allclose(describe(gx, gy, xy, angle + np.pi), turned_half(d), atol=1e-5)


def test_extraction_respects_nodata_and_budget() -> None:
    img = texture(256)
    valid = np.ones(img.shape, bool)
    valid[:, 128:] = False
    det = ClassicalDetector()
    kps = extract(prepare_image(img, "optical", valid), valid, det, "optical", 120, QUIET)
    assert 20 <= len(kps) <= 121
    # no keypoint whose descriptor core reaches the invalid half
    assert kps.xy[:, 0].max() < 128 - det.margin + 1
    norms = np.linalg.norm(kps.described.desc, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)


# ------------------------------------------------------------------ registration
def test_registration_recovers_a_rotation_and_scale() -> None:
    from scipy import ndimage

    ref = texture(256, seed=4)
    h_true = np.array([[0.9 * np.cos(0.4), -0.9 * np.sin(0.4), 60.0],
                       [0.9 * np.sin(0.4), 0.9 * np.cos(0.4), -30.0], [0, 0, 1.0]])
    yy, xx = np.mgrid[:256, :256]
    q = transforms.project(h_true, np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)) - 0.5
    inp = ndimage.map_coordinates(ref, [q[:, 1], q[:, 0]], order=3, cval=np.nan).reshape(256, 256)
    ok = np.isfinite(inp)
    reg = register_images(ImageSide(np.nan_to_num(inp), ok, "intensity", "INPUT"),
                          ImageSide(ref, np.ones_like(ok), "intensity", "REFERENCE"),
                          ClassicalDetector(), "similarity")
    assert reg.n_inliers >= 20
    assert transforms.corner_error(reg.matrix, h_true, 256, 256) < 1.0


@pytest.fixture
def scale_two_pair(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """INPUT = 2 x 2 block means of REFERENCE: INPUT corner coords x 2 = REFERENCE corner coords, exactly."""
    ref = texture(256, seed=5)
    inp = block_mean(ref)
    ref_path = write_test_geotiff(tmp_path / "ref.tif", ref, crs_wkt=None, transform=(1, 0, 0, 0, 1, 0))
    inp_path = write_test_geotiff(tmp_path / "in.tif", inp, crs_wkt=None, transform=(1, 0, 0, 0, 1, 0))
    return inp_path, ref_path, np.diag([2.0, 2.0, 1.0])


def test_pixel_transform_convention_on_an_exact_warp(scale_two_pair: tuple[Path, Path, np.ndarray],
                                                     tmp_path: Path) -> None:
    inp_path, ref_path, truth = scale_two_pair
    out = {k: tmp_path / f"out.{ext}" for k, ext in
           [("output_path", "tif"), ("tiepoints_path", "gpkg"), ("gcp_path", "points"),
            ("matches_png_path", "png"), ("report_path", "json")]}
    result = keypoint_register(inp_path, ref_path, transform="affine", **out)  # type: ignore[arg-type]
    report = json.loads(out["report_path"].read_text())
    h = np.array(report["pixel_transform"])
    assert transforms.corner_error(h, truth, 128, 128) < 1.0
    # a pixel-centre convention would put every match, and the fitted map, 0.5 px off
    reg = result.registration
    assert np.all(np.abs((reg.dst - transforms.project(truth, reg.src)).mean(axis=0)) < 0.15)
    centre = np.array([[64.0, 64.0]])
    assert np.hypot(*(transforms.project(h, centre) - transforms.project(truth, centre))[0]) < 0.2
    assert report["n_inliers"] == result.registration.n_inliers >= 8
    assert report["fitted_transform"] == "affine"
    corners = report["corner_uncertainty_px"]
    assert list(corners) == ["top_left", "top_right", "bottom_right", "bottom_left"]
    assert all(0.0 <= v < 1.0 for v in corners.values())
    for p in out.values():
        assert p.is_file() and p.stat().st_size > 0
    lines = out["gcp_path"].read_text().splitlines()
    assert lines[0].startswith("mapX,mapY,pixelX,pixelY,enable,dX,dY,residual")
    # residuals as the shift front writes them (transforms.residuals): where the match is minus where the
    # transform puts it; they were written with the opposite sign
    rows = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    np.testing.assert_allclose(rows[:, 5:7], reg.dst - transforms.project(reg.matrix, reg.src), atol=1e-9)


def test_output_on_reference_grid_uses_pixel_corners(tmp_path: Path) -> None:
    """write_on_reference_grid with an exact scale 2: output column c samples input x = (c + 0.5) / 2."""
    import rasterio

    from engine.raster_io import inspect_raster
    from engine.registration.keypoints.outputs import write_on_reference_grid

    ramp = np.tile(np.arange(64, dtype=np.float32), (64, 1))
    inp = write_test_geotiff(tmp_path / "ramp.tif", ramp, crs_wkt=None, transform=(1, 0, 0, 0, 1, 0))
    ref = write_test_geotiff(tmp_path / "big.tif", np.zeros((128, 128), np.float32), crs_wkt=None,
                             transform=(1, 0, 0, 0, 1, 0))
    out = tmp_path / "onref.tif"
    write_on_reference_grid(out, inspect_raster(inp), inspect_raster(ref), np.diag([2.0, 2.0, 1.0]),
                            "bilinear", QUIET)
    with rasterio.open(out) as src:
        got = src.read(1)
    cols = np.arange(4, 120)
    np.testing.assert_allclose(got[64, cols], cols / 2 - 0.25, atol=1e-4)


# ------------------------------------------------------------------ bad inputs
def _outputs(tmp_path: Path) -> dict[str, Path]:
    return {"output_path": tmp_path / "o.tif", "report_path": tmp_path / "o.json",
            "matches_png_path": tmp_path / "o.png"}


def _nothing_written(out: dict[str, Path]) -> bool:
    return not any(p.exists() for p in out.values()) and not any(
        f.name.startswith(".o.tmp") for f in next(iter(out.values())).parent.iterdir())


@pytest.mark.parametrize("case", ["featureless", "all-nodata"])
def test_too_few_keypoints(case: str, tmp_path: Path) -> None:
    ref = write_test_geotiff(tmp_path / "ref.tif", texture(128), crs_wkt=None, transform=(1, 0, 0, 0, 1, 0))
    data = np.full((128, 128), 5.0, np.float32) if case == "featureless" else np.full((128, 128), -1.0,
                                                                                      np.float32)
    inp = write_test_geotiff(tmp_path / "in.tif", data, nodata=-1.0, crs_wkt=None,
                             transform=(1, 0, 0, 0, 1, 0))
    out = _outputs(tmp_path)
    with pytest.raises(RegistrationError, match=r"Only 0 keypoint\(s\) found in the INPUT"):
        keypoint_register(inp, ref, **out)  # type: ignore[arg-type]
    assert _nothing_written(out)


def test_too_few_inliers(tmp_path: Path) -> None:
    a = write_test_geotiff(tmp_path / "a.tif", texture(192, seed=10), crs_wkt=None,
                           transform=(1, 0, 0, 0, 1, 0))
    b = write_test_geotiff(tmp_path / "b.tif", texture(192, seed=11), crs_wkt=None,
                           transform=(1, 0, 0, 0, 1, 0))
    out = _outputs(tmp_path)
    with pytest.raises(RegistrationError, match="inlier"):
        keypoint_register(a, b, **out)  # type: ignore[arg-type]
    assert _nothing_written(out)


def test_non_overlapping_inputs(tmp_path: Path) -> None:
    a = write_test_geotiff(tmp_path / "a.tif", texture(128))
    far = (10.0, 0.0, 900000.0, 0.0, -10.0, 100000.0)
    b = write_test_geotiff(tmp_path / "b.tif", texture(128), transform=far)
    out = _outputs(tmp_path)
    with pytest.raises(InputError, match="do not overlap"):
        keypoint_register(a, b, **out)  # type: ignore[arg-type]
    assert _nothing_written(out)


def test_model_of_the_wrong_task(identity_model: Path, scale_two_pair: tuple[Path, Path, np.ndarray],
                                 tmp_path: Path) -> None:
    inp, ref, _ = scale_two_pair
    out = _outputs(tmp_path)
    with pytest.raises(ModelError, match="keypoints"):
        keypoint_register(inp, ref, model_path=identity_model, **out)  # type: ignore[arg-type]
    assert _nothing_written(out)


def test_bad_parameters(scale_two_pair: tuple[Path, Path, np.ndarray]) -> None:
    inp, ref, _ = scale_two_pair
    with pytest.raises(InputError, match="transform"):
        keypoint_register(inp, ref, transform="poly2")
    with pytest.raises(InputError, match="resampling"):
        keypoint_register(inp, ref, resampling="magic")
    with pytest.raises(InputError, match="Band 3"):
        keypoint_register(inp, ref, band=3)
    with pytest.raises(InputError, match="optical-SAR keypoint method 'sift'; use one of sar-harris, rift"):
        keypoint_register(inp, ref, optical_sar_method="sift")


@pytest.mark.parametrize(("kinds", "optical_sar_method", "expected"), [
    (("amplitude", "optical"), "sar-harris", "sar-harris-ogh-v1"),  # the default
    (("optical", "db"), "sar-harris", "sar-harris-ogh-v1"),
    (("amplitude", "optical"), "rift", "rift-v1"),  # one switch away
    (("amplitude", "db"), "rift", "sar-sift-v1"),  # two SAR images: SAR-SIFT whatever the switch
])
def test_the_optical_sar_keypoints_are_sar_harris_unless_rift_is_asked_for(
        kinds: tuple[str, str], optical_sar_method: str, expected: str) -> None:
    """RIFT gave the SAR-Harris path's answer on every benchmark case at more CPU and memory: it is an
    option, not the default (decision record 2026-12-07-keypoints-rift.md)."""
    from engine.registration.keypoints.register import keypoint_method

    img, ok = np.ones((8, 8), np.float32), np.ones((8, 8), bool)
    inp, ref = ImageSide(img, ok, kinds[0], "INPUT"), ImageSide(img, ok, kinds[1], "REFERENCE")
    det = ClassicalDetector()
    method = keypoint_method(inp, ref, det, optical_sar_method)
    assert (method if isinstance(method, str) else method.model_id) == expected
    if optical_sar_method == "sar-harris":
        assert keypoint_method(inp, ref, det) is method


# ------------------------------------------------------------------ learned detector
def build_fake_keypoint_model(path: Path, channels: int = 16, tile_size: int = 64, overlap: int = 16) -> Path:
    """A tiny keypoints ONNX of the contract: random-conv descriptors, |Laplacian| repeatability,
    reliability = sigmoid(modality)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from engine.metadata import InputTransform, ModelMetadata, Normalisation, Task

    rng = np.random.default_rng(0)
    lap = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32).reshape(1, 1, 3, 3)
    inits = [numpy_helper.from_array(rng.normal(0, 1, (channels, 1, 7, 7)).astype(np.float32), "wd"),
             numpy_helper.from_array(lap, "wl"), numpy_helper.from_array(np.array(4.0, np.float32), "gain"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array([-1, 1, 1, 1], np.int64), "shape4")]
    nodes = [
        helper.make_node("Conv", ["image", "wd"], ["d"], pads=[3, 3, 3, 3]),
        helper.make_node("LpNormalization", ["d"], ["descriptors"], axis=1, p=2),
        helper.make_node("Conv", ["image", "wl"], ["l"], pads=[1, 1, 1, 1]),
        helper.make_node("Abs", ["l"], ["la"]),
        helper.make_node("Mul", ["la", "gain"], ["lg"]),
        helper.make_node("Tanh", ["lg"], ["repeatability"]),
        helper.make_node("Reshape", ["modality", "shape4"], ["m4"]),
        helper.make_node("Mul", ["image", "zero"], ["z"]),
        helper.make_node("Add", ["z", "m4"], ["zm"]),
        helper.make_node("Sigmoid", ["zm"], ["reliability"]),
    ]
    img: list[str | int | None] = ["N", 1, "H", "W"]
    graph = helper.make_graph(
        nodes, "fake_keypoints",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, img),
         helper.make_tensor_value_info("modality", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("repeatability", TensorProto.FLOAT, img),
         helper.make_tensor_value_info("reliability", TensorProto.FLOAT, img),
         helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(task=Task.KEYPOINTS, model_id="fake-kp", weights_sha256=FAKE_SHA256, input_bands=1,
                         input_transform=InputTransform.NONE, normalisation=Normalisation.NONE,
                         tile_size=tile_size, overlap=overlap, latent_channels=channels,
                         extra={"adapters": "sar,optical", "descriptor_dim": str(channels)})
    for key, value in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_learned_detector_runs_the_contract_through_tiles(tmp_path: Path) -> None:
    from engine.registration.keypoints.learned import LearnedDetector

    det = LearnedDetector(build_fake_keypoint_model(tmp_path / "kp.onnx"))
    img = texture(160, seed=7)
    valid = np.ones(img.shape, bool)
    kps = extract(prepare_image(img, "optical", valid), valid, det, "optical", 300, QUIET)
    assert len(kps) > 50 and kps.described.desc.shape == (len(kps), 16)
    np.testing.assert_allclose(np.linalg.norm(kps.described.desc, axis=1), 1.0, atol=1e-4)
    # the modality input reaches the model: optical scores sigmoid(1), SAR sigmoid(0)
    batch = prepare_image(img, "optical")[None, None, :64, :64]
    ratio = det.scores(batch, "optical").max() / det.scores(batch, "sar").max()
    assert ratio == pytest.approx((1 / (1 + np.exp(-1.0))) / 0.5, rel=1e-3)


def test_learned_detector_registers_a_shifted_pair(tmp_path: Path) -> None:
    from engine.registration.keypoints.learned import LearnedDetector

    det = LearnedDetector(build_fake_keypoint_model(tmp_path / "kp.onnx"))
    big = texture(224, seed=8)
    ref, inp = big[:192, :192], big[9:201, 13:205]  # INPUT pixel (c, r) = REFERENCE (c + 13, r + 9)
    ok = np.ones(ref.shape, bool)
    reg = register_images(ImageSide(inp, ok, "optical", "INPUT"), ImageSide(ref, ok, "optical", "REFERENCE"),
                          det, "similarity")
    truth = np.array([[1.0, 0, 13.0], [0, 1.0, 9.0], [0, 0, 1.0]])
    assert transforms.corner_error(reg.matrix, truth, 192, 192) < 0.5
    assert reg.method == "learned" and reg.model_id == "fake-kp"


@pytest.mark.parametrize(("ref_kind", "optical_sar_method", "message"), [
    ("optical", "sar-harris", r"degenerate \(it folds or mirrors"),  # SAR-Harris keypoints, affine coarse fit
    ("db", "rift", r"degenerate \(it folds or mirrors"),  # SAR-SIFT's
    ("optical", "rift", "inlier"),  # RIFT's: their similarity coarse fit cannot mirror, none agrees
])
def test_a_mirrored_consensus_is_refused_as_degenerate(monkeypatch: pytest.MonkeyPatch, ref_kind: str,
                                                       optical_sar_method: str, message: str) -> None:
    """Keypoints whose only consistent map is a mirror: the registration refuses it and says why."""
    from engine.registration.keypoints import register as reg_module
    from engine.registration.keypoints.detect import Descriptions, Keypoints

    rng = np.random.default_rng(12)
    xy = rng.uniform(20, 236, (60, 2))
    desc = rng.normal(size=(60, 32)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    check = np.ones((60, 81), np.float32) / 9.0

    calls: list[int] = []

    def fake_extract(*args: object) -> Keypoints:
        calls.append(1)  # INPUT first, then REFERENCE (mirrored)
        pts = np.stack([256 - xy[:, 0], xy[:, 1]], 1) if len(calls) == 2 else xy
        return Keypoints(pts, np.ones(60, np.float32), np.ones(60, np.float32),
                         Descriptions(desc, None, check, np.zeros(60)))

    monkeypatch.setattr(reg_module, "extract", fake_extract)
    monkeypatch.setattr(reg_module.sarsift, "extract", fake_extract)
    monkeypatch.setattr(reg_module.rift, "extract", fake_extract)
    img, ok = np.ones((256, 256), np.float32), np.ones((256, 256), bool)
    with pytest.raises(RegistrationError, match=message):
        register_images(ImageSide(img, ok, "db", "INPUT"), ImageSide(img, ok, ref_kind, "REFERENCE"),
                        ClassicalDetector(), "homography", optical_sar_method=optical_sar_method)


def test_learned_descriptors_come_from_the_score_pass(tmp_path: Path) -> None:
    """The description pass reuses the score pass's descriptor tiles (no second model run), and a
    small level runs as one tile."""
    from engine.registration.keypoints.learned import LearnedDetector

    det = LearnedDetector(build_fake_keypoint_model(tmp_path / "kp.onnx", tile_size=64, overlap=16))
    assert det.tile_for((100, 90)) == 112 and det.tile_for((2000, 3000)) == 512
    runs: list[list[str]] = []
    original = det._run

    def counting(batch: np.ndarray, modality: str, outputs: list[str]) -> list[np.ndarray]:
        runs.append(outputs)
        return original(batch, modality, outputs)

    det._run = counting  # type: ignore[method-assign]
    img = texture(160, seed=9)
    valid = np.ones(img.shape, bool)
    valid[:20] = False
    kps = extract(prepare_image(img, "optical", valid), valid, det, "sar", 200, QUIET)
    assert len(kps) > 20 and ["descriptors"] not in runs


def test_warp_onto_follows_the_pixel_corner_convention_and_marks_validity() -> None:
    rng = np.random.default_rng(5)
    img = rng.normal(size=(40, 50)).astype(np.float32)
    valid = np.ones(img.shape, bool)
    valid[:, 45:] = False
    double = np.diag([2.0, 2.0, 1.0])  # INPUT corner (x, y) -> grid corner (2x, 2y)
    out, ok = warp.warp_onto(img, valid, double, (80, 100))
    # grid pixel (2r, 2c): centre (2c + 0.5, 2r + 0.5) -> INPUT corner point (c + 0.25, r + 0.25), i.e. a
    # quarter pixel up and left of INPUT pixel (r, c)'s centre: bilinear weights 9/16, 3/16, 3/16, 1/16
    r, c = 7, 9
    expected = (9 * img[r, c] + 3 * img[r - 1, c] + 3 * img[r, c - 1] + img[r - 1, c - 1]) / 16
    assert out[2 * r, 2 * c] == pytest.approx(expected, abs=1e-5)
    assert ok[10, 10] and not ok[10, 95] and not ok[79, 10]  # invalid columns; beyond the last centre
    shift = np.array([[1.0, 0, 3], [0, 1, -2], [0, 0, 1]])
    shifted, ok_shift = warp.warp_onto(img, valid, shift, (40, 50))
    assert np.allclose(shifted[0:30, 3:40], img[2:32, 0:37]) and not ok_shift[:, :3].any()


def test_grid_sources_sends_points_at_infinity_far_outside() -> None:
    h = np.array([[1.0, 0, 0], [0, 1, 0], [1 / 10.5, 0, 1]])  # its inverse sends grid x = 10.5 to infinity
    ys, xs = warp.grid_sources(h, 4, 30)
    assert np.isfinite(ys).all() and np.isfinite(xs).all()
    assert np.all(xs.reshape(4, 30)[:, 10] < -1e6)  # the centres of column 10 (x = 10.5)
    _, ok = warp.warp_onto(np.ones((8, 8), np.float32), np.ones((8, 8), bool), h, (4, 30))
    assert not ok[:, 10].any()


# ------------------------------------------------------------------ memory (finding 24.8)
def test_an_image_above_the_size_limit_is_refused_before_reading(
        scale_two_pair: tuple[Path, Path, np.ndarray], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.registration.keypoints.api as api

    inp, ref, _ = scale_two_pair
    monkeypatch.setattr(api, "MAX_PIXELS", 100)
    monkeypatch.setattr(api, "_read_image", lambda *a: pytest.fail("read before the size check"))
    with pytest.raises(InputError, match=r"The INPUT .* px; keypointregister reads both images whole .*"
                                         r"Crop both rasters.*coregister"):
        keypoint_register(inp, ref, output_path=tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()


def test_orientation_smoothing_in_place_equals_the_stack_formula() -> None:
    from engine.registration.features import _smooth_orientations, _sum_of_squares

    feats = np.random.default_rng(0).random((9, 40, 30)).astype(np.float32)
    expected = 0.25 * (np.roll(feats, 1, axis=0) + 2 * feats + np.roll(feats, -1, axis=0))
    _smooth_orientations(feats)
    np.testing.assert_array_equal(feats, expected)
    np.testing.assert_array_equal(_sum_of_squares(feats), (feats**2).sum(axis=0))


def test_the_learned_detector_scores_one_tile_at_a_time(tmp_path: Path) -> None:
    from engine.registration.keypoints.learned import LearnedDetector

    detector = LearnedDetector(build_fake_keypoint_model(tmp_path / "kp.onnx"))
    assert detector.batch_size == 1  # batches of 4 tiles of 512 px peaked at 2.9 GB on 1400 x 1400
    batches: list[int] = []
    real_run = detector._run

    def counting(batch: np.ndarray, modality: str, outputs: list[str]) -> list[np.ndarray]:
        batches.append(len(batch))
        return real_run(batch, modality, outputs)

    detector._run = counting  # type: ignore[method-assign]
    image = np.random.default_rng(1).random((700, 600)).astype(np.float32)
    extract(image, np.ones(image.shape, bool), detector, "sar", 200, QUIET)
    assert batches and set(batches) == {1}
