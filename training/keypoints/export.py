"""Export the keypoint network to ONNX (``Task.KEYPOINTS``) with the engine's metadata.

Inputs: ``image`` ``[N, 1, H, W]`` float32 (after :func:`engine.registration.prepare.prepare_image`;
H, W multiples of 16) and ``modality`` ``[N, 1]`` float32 (0 = SAR, 1 = optical).
Outputs: ``repeatability`` and ``reliability`` ``[N, 1, H, W]`` in [0, 1] and ``descriptors``
``[N, D, H, W]`` L2-normalised over D; keypoint score = repeatability * reliability.
Dynamic N, H, W; opset 17; ``dynamo=False``. The file is written to a temporary name,
checked against PyTorch through the engine's :class:`engine.runtime.OnnxModel` (metadata,
task and input checks) on both modalities, then renamed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from engine.metadata import InputTransform, ModelMetadata, Normalisation, Task
from training.onnx_export import PARITY_TOLERANCE as PARITY_TOLERANCE  # re-exported for callers
from training.onnx_export import export_onnx, write_checked
from training.onnx_io import sha256_of_state

from .models import KeypointNet
from .train import TrainConfig, load_checkpoint, model_from_checkpoint

logger = logging.getLogger(__name__)

INPUT_NAMES = ("image", "modality")
OUTPUT_NAMES = ("repeatability", "reliability", "descriptors")
ADAPTERS = "sar,optical"
PREPROCESS = "engine.registration.prepare.prepare_image"


def keypoint_metadata(
    net: KeypointNet, cfg: TrainConfig, model_id: str, tile_size: int = 256, overlap: int = 32,
    steps_done: int | None = None,
) -> ModelMetadata:
    """The engine metadata of an exported keypoint network (the issue-16 contract)."""
    d = cfg.model.descriptor_dim
    return ModelMetadata(
        task=Task.KEYPOINTS,
        model_id=model_id,
        weights_sha256=sha256_of_state(net.state_dict()),
        input_bands=1,
        input_transform=InputTransform.NONE,
        normalisation=Normalisation.NONE,
        tile_size=tile_size,
        overlap=overlap,
        scale_factor=1,
        latent_channels=d,
        output_meaning=(
            f"repeatability [N,1,H,W] and reliability [N,1,H,W] in [0,1] (keypoint score = their product), "
            f"descriptors [N,{d},H,W] L2-normalised over channels; inputs image [N,1,H,W] (prepare_image, "
            "H and W multiples of 16) and modality [N,1] (0 = SAR, 1 = optical)"
        ),
        extra={
            "adapters": ADAPTERS,
            "descriptor_dim": str(d),
            "preprocess": PREPROCESS,
            "side_multiple": "16",
            "receptive_field": str(net.receptive_field()),
            "training_steps": str(cfg.steps if steps_done is None else steps_done),
            "seed": str(cfg.seed),
        },
    )


def _export(net: KeypointNet, path: Path) -> None:
    axes = {
        "image": {0: "N", 2: "H", 3: "W"},
        "modality": {0: "N"},
        **{name: {0: "N", 2: "H", 3: "W"} for name in OUTPUT_NAMES},
    }
    export_onnx(net, (torch.zeros(1, 1, 64, 64), torch.zeros(1, 1)), path, INPUT_NAMES, OUTPUT_NAMES, axes)


@torch.no_grad()
def parity(net: KeypointNet, path: Path, seed: int = 0) -> float:
    """Max abs difference, ONNX Runtime (engine ``OnnxModel``) vs PyTorch, over all three outputs.

    A non-square batch of two images, one per modality, in the network's input range.
    """
    from engine.runtime import OnnxModel

    net.eval()
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (2, 1, 48, 80)).astype(np.float32)
    m = np.array([[0.0], [1.0]], np.float32)
    ref = [t.numpy() for t in net(torch.from_numpy(x), torch.from_numpy(m))]
    model = OnnxModel(path, providers=["CPUExecutionProvider"], tasks=[Task.KEYPOINTS])
    got = model.run_all(x, extra={"modality": m}, outputs=OUTPUT_NAMES)
    worst = 0.0
    for name, g, r in zip(OUTPUT_NAMES, got, ref, strict=True):
        if g.shape != r.shape:
            raise AssertionError(f"ONNX output '{name}' has shape {g.shape}, PyTorch {r.shape}.")
        worst = max(worst, float(np.max(np.abs(g - r))))
    return worst


def export_model(
    checkpoint: str | os.PathLike[str], out_dir: str | os.PathLike[str], model_id: str,
    tile_size: int = 256, overlap: int = 32, check_parity: bool = True,
) -> dict[str, object]:
    """Write ``<out_dir>/<model_id>.onnx``; returns its path, parity and model id."""
    if tile_size % 16 or overlap % 16:
        raise ValueError(f"tile_size and overlap must be multiples of 16 (got {tile_size}, {overlap}).")
    ckpt = load_checkpoint(checkpoint)
    net, cfg = model_from_checkpoint(ckpt)
    meta = keypoint_metadata(net, cfg, model_id, tile_size, overlap, steps_done=int(ckpt["step"]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{model_id}.onnx"
    diff = write_checked(path, lambda tmp: _export(net, tmp), meta,
                         (lambda tmp: parity(net, tmp)) if check_parity else None)
    logger.info("wrote %s (parity %.2e)", path, diff)
    return {"path": str(path), "parity_max_abs": diff, "model_id": model_id, "steps": int(ckpt["step"])}
