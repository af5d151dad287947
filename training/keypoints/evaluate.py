"""Held-out scores of keypoint methods under seeded random homographies.

Sets (none of their images is trained on):

* ``optical-sar``: the held-out ``opt_sar_3mos`` pairs; the SAR (INPUT) warped by a random
  homography (the training distribution: rotation +-30 deg, scale 0.75-1.33, tilt, mild
  perspective), the optical grey image (REFERENCE) as it is;
* ``sar-sar``: the held-out pairs' SAR images against themselves, warped, with independent
  single-look speckle on each side;
* ``synthetic``: synthetic scenes (seeds from 100000, never trained on), optical-SAR.

Per case: keypoints of both images (single scale, local maxima over 9 x 9, at most
``max_keypoints``, at least 4 px inside the valid area), mutual nearest-neighbour matches,
correct when the INPUT keypoint maps within 3 px of its match under the true homography.
Scores: repeatability (share of INPUT keypoints inside the overlap with a REFERENCE keypoint
within 3 px), NCM, correct-match rate (NCM / matches), RANSAC homography (skimage, 3 px)
success = mean corner error < 3 px. This is the training-side check behind the model card;
the engine's benchmark (``make bench-keypoints``) scores the full extraction and matching.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from engine.registration.prepare import prepare_image

from ..config import documented
from ..data.pairs import DEFAULT_REAL_ROOT
from .data import (
    HELD_OUT,
    OPTICAL,
    SAR,
    DataConfig,
    Scene,
    apply_h,
    random_homography,
    real_pair_scenes,
    speckle,
    synthetic_scenes,
    translation,
    warp,
)

logger = logging.getLogger(__name__)

CORRECT_PX = 3.0
NMS_SIZE = 9
BORDER = 4
SYNTHETIC_FIRST_SEED = 100_000

Detect = Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]
"""``(prepared image, valid, modality) -> (xy (n, 2) index coordinates, descriptors (n, d))``."""


@dataclass(frozen=True)
class EvalConfig:
    real_root: str = DEFAULT_REAL_ROOT
    held_out: tuple[str, ...] = HELD_OUT
    warps_per_pair: int = 4
    synthetic: int = documented(8, "held-out synthetic scenes")
    synthetic_size: int = 256
    max_keypoints: int = 512
    seed: int = 12345


@dataclass
class Case:
    name: str
    input: np.ndarray  # prepared
    input_valid: np.ndarray
    input_modality: float
    reference: np.ndarray
    reference_valid: np.ndarray
    reference_modality: float
    h: np.ndarray  # INPUT index coords -> REFERENCE index coords


# ------------------------------------------------------------------ cases
def _warp_case(name: str, scene: Scene, sar_sar: bool, rng: np.random.Generator) -> Case:
    h, w = scene.sar.shape
    c = translation((w - 1) / 2, (h - 1) / 2)
    hom = c @ random_homography(rng, DataConfig()) @ np.linalg.inv(c)
    img, ok = warp(scene.sar, hom, min(h, w))
    if sar_sar:
        img = speckle(img, 1.0, rng)
        ref_raw, ref_kind, ref_mod = speckle(scene.sar, 1.0, rng), "intensity", SAR
    else:
        assert scene.optical is not None
        ref_raw, ref_kind, ref_mod = scene.optical, "optical", OPTICAL
    if not scene.speckled and not sar_sar:
        img = speckle(img, 4.0, rng)
    ref_ok = np.ones(ref_raw.shape, bool)
    return Case(name, prepare_image(img, "intensity", ok), ok, SAR,
                prepare_image(ref_raw, ref_kind, ref_ok), ref_ok, ref_mod, hom)


def build_cases(cfg: EvalConfig) -> dict[str, list[Case]]:
    """The seeded evaluation cases of every set (sets without data are left out)."""
    rng = np.random.default_rng(cfg.seed)
    sets: dict[str, list[Case]] = {}
    try:
        _, held = real_pair_scenes(cfg.real_root, cfg.held_out)
    except FileNotFoundError as exc:
        logger.warning("real pairs skipped: %s", exc)
        held = []
    if held:
        sets["optical-sar"] = [_warp_case(f"{s.name}#{k}", s, False, rng)
                               for s in held for k in range(cfg.warps_per_pair)]
        sets["sar-sar"] = [_warp_case(f"{s.name}#{k}", s, True, rng)
                           for s in held for k in range(cfg.warps_per_pair)]
    if cfg.synthetic > 0:
        synth = synthetic_scenes(cfg.synthetic, cfg.synthetic_size, SYNTHETIC_FIRST_SEED)
        sets["synthetic"] = [_warp_case(s.name, s, False, rng) for s in synth]
    return sets


# ---------------------------------------------------------------- methods
def _peaks(score: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    usable = ndimage.binary_erosion(valid, iterations=BORDER, border_value=0)
    s = np.where(usable, score, -np.inf)
    peak = (s == ndimage.maximum_filter(s, size=NMS_SIZE, mode="constant", cval=-np.inf)) & usable
    rows, cols = np.nonzero(peak)
    order = np.argsort(-s[rows, cols], kind="stable")[:k]
    return np.stack([cols[order], rows[order]], axis=1).astype(np.float64)


def network_method(run: Callable[[np.ndarray, np.ndarray], list[np.ndarray]], k: int) -> Detect:
    """A keypoint network (``run(image, modality) -> [repeatability, reliability, descriptors]``)."""

    def detect(img: np.ndarray, valid: np.ndarray, modality: float) -> tuple[np.ndarray, np.ndarray]:
        h, w = img.shape
        ph, pw = -(-h // 16) * 16, -(-w // 16) * 16
        x = np.zeros((1, 1, ph, pw), np.float32)
        x[0, 0, :h, :w] = img
        rep, rel, desc = run(x, np.array([[modality]], np.float32))
        xy = _peaks((rep * rel)[0, 0, :h, :w], valid, k)
        d = desc[0][:, xy[:, 1].astype(int), xy[:, 0].astype(int)].T
        return xy, d

    return detect


def onnx_runner(path: str) -> Callable[[np.ndarray, np.ndarray], list[np.ndarray]]:
    from engine.metadata import Task
    from engine.runtime import OnnxModel

    model = OnnxModel(path, providers=["CPUExecutionProvider"], tasks=[Task.KEYPOINTS])
    return lambda x, m: list(model.session.run(None, {"image": x, "modality": m}))


def checkpoint_runner(path: str) -> Callable[[np.ndarray, np.ndarray], list[np.ndarray]]:
    import torch

    from .train import load_checkpoint, model_from_checkpoint

    net, _ = model_from_checkpoint(load_checkpoint(path))

    def run(x: np.ndarray, m: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in net(torch.from_numpy(x), torch.from_numpy(m))]

    return run


def sift_method(k: int) -> Detect:
    """scikit-image SIFT on the prepared image (the classical baseline)."""
    from skimage.feature import SIFT

    def detect(img: np.ndarray, valid: np.ndarray, modality: float) -> tuple[np.ndarray, np.ndarray]:
        sift = SIFT()
        try:
            sift.detect_and_extract((img + 1.0) / 2.0)
        except RuntimeError:  # no keypoint found
            return np.zeros((0, 2)), np.zeros((0, 128), np.float32)
        if sift.keypoints is None or sift.descriptors is None:
            return np.zeros((0, 2)), np.zeros((0, 128), np.float32)
        xy = np.asarray(sift.keypoints)[:, ::-1].astype(np.float64)
        desc = np.asarray(sift.descriptors).astype(np.float32)
        inside = valid[xy[:, 1].astype(int), xy[:, 0].astype(int)]
        xy, desc = xy[inside][:k], desc[inside][:k]
        return xy, desc / np.maximum(np.linalg.norm(desc, axis=1, keepdims=True), 1e-6)

    return detect


def make_method(spec: str, k: int) -> Detect:
    if spec == "sift":
        return sift_method(k)
    if spec.endswith(".onnx"):
        return network_method(onnx_runner(spec), k)
    if Path(spec).exists():
        return network_method(checkpoint_runner(spec), k)
    raise ValueError(f"Unknown method '{spec}'; give a checkpoint, a .onnx model or 'sift'.")


# ---------------------------------------------------------------- scoring
def mutual_nn(da: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Mutual nearest neighbours by cosine similarity: ``(m, 2)`` index pairs."""
    if len(da) == 0 or len(db) == 0:
        return np.zeros((0, 2), int)
    sim = da @ db.T
    ab, ba = sim.argmax(1), sim.argmax(0)
    i = np.nonzero(ba[ab] == np.arange(len(da)))[0]
    return np.stack([i, ab[i]], axis=1)


def corner_error(est: np.ndarray, true: np.ndarray, shape: tuple[int, int]) -> float:
    h, w = shape
    cx, cy = np.array([0, w - 1, w - 1, 0], float), np.array([0, 0, h - 1, h - 1], float)
    ex, ey = apply_h(est, cx, cy)
    tx, ty = apply_h(true, cx, cy)
    return float(np.mean(np.hypot(ex - tx, ey - ty)))


def score_case(case: Case, detect: Detect) -> dict[str, float]:
    from skimage.measure import ransac
    from skimage.transform import ProjectiveTransform

    t0 = time.perf_counter()
    xa, da = detect(case.input, case.input_valid, case.input_modality)
    xb, db = detect(case.reference, case.reference_valid, case.reference_modality)
    matches = mutual_nn(da, db)
    seconds = time.perf_counter() - t0
    px, py = apply_h(case.h, xa[:, 0], xa[:, 1])
    h, w = case.reference.shape
    inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    if inside.any() and len(xb):
        d = np.hypot(px[inside, None] - xb[None, :, 0], py[inside, None] - xb[None, :, 1]).min(1)
        repeat = float(np.mean(d <= CORRECT_PX))
    else:
        repeat = 0.0
    err = np.hypot(px[matches[:, 0]] - xb[matches[:, 1], 0], py[matches[:, 0]] - xb[matches[:, 1], 1])
    ncm = int(np.sum(err <= CORRECT_PX))
    corner = float("inf")
    if len(matches) >= 4:
        model, _ = ransac((xa[matches[:, 0]], xb[matches[:, 1]]), ProjectiveTransform, min_samples=4,
                          residual_threshold=CORRECT_PX, max_trials=2000, rng=0)
        if model is not None:
            corner = corner_error(model.params, case.h, (case.input.shape[0], case.input.shape[1]))
    return {"keypoints": float(len(xa)), "matches": float(len(matches)), "ncm": float(ncm),
            "cmr": ncm / len(matches) if len(matches) else 0.0, "repeatability": repeat,
            "corner_error": corner, "success": float(corner < CORRECT_PX), "seconds": seconds}


def evaluate(methods: list[str], cfg: EvalConfig) -> dict[str, Any]:
    """Scores of every method on every set: per case and the set means."""
    sets = build_cases(cfg)
    report: dict[str, Any] = {"config": asdict(cfg), "cases": {}, "summary": {}}
    for spec in methods:
        detect = make_method(spec, cfg.max_keypoints)
        report["cases"][spec], report["summary"][spec] = {}, {}
        for set_name, cases in sets.items():
            rows = [score_case(c, detect) for c in cases]
            report["cases"][spec][set_name] = {c.name: r for c, r in zip(cases, rows, strict=True)}
            keys = ("keypoints", "matches", "ncm", "cmr", "repeatability", "success", "seconds")
            summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
            summary["median_corner_error"] = float(np.median([r["corner_error"] for r in rows]))
            summary["cases"] = float(len(rows))
            report["summary"][spec][set_name] = summary
            logger.info("%s %s: %s", spec, set_name, summary)
    return report
