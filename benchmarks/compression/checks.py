"""Seams, decoding determinism, memory scaling and ONNX Runtime vs PyTorch speed of the codec."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.codec.decode import decompress_file
from engine.codec.encode import compress_raster
from engine.codec.models import bundled_codec
from engine.codec.quality import metrics as quality

from .rows import REPO_ROOT, SEAM_BAND, SYNTHETIC_SEED

log = logging.getLogger("benchmarks.compression")


# ------------------------------------------------------------------ seams, determinism
def seam_ratio(ref: np.ndarray, rec: np.ndarray, tile: int, overlap: int, band: int = SEAM_BAND) -> float:
    """Mean abs error in ``band``-px strips along tile core boundaries / mean abs error elsewhere."""
    err = np.abs(rec.astype(np.float64) - ref)
    valid = np.isfinite(err)
    stride, half = tile - overlap, overlap // 2
    mask = np.zeros(err.shape, dtype=bool)
    for edge in range(stride + half, max(err.shape), stride):
        mask[max(edge - band // 2, 0) : edge + band // 2, :] = True
        mask[:, max(edge - band // 2, 0) : edge + band // 2] = True
    inside, outside = mask & valid, ~mask & valid
    if not inside.any() or not outside.any():
        return math.nan
    return float(err[inside].mean() / err[outside].mean())


def decoded_digest(sarz: Path, out: Path) -> str:
    decompress_file(sarz, out)
    return hashlib.sha256(quality.read_db(out, 1, "db").tobytes()).hexdigest()


def determinism(sarz: Path, work: Path) -> dict[str, bool]:
    first = decoded_digest(sarz, work / "det_a.tif")
    second = decoded_digest(sarz, work / "det_b.tif")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
        "from benchmarks.compression.checks import decoded_digest; "
        "print(decoded_digest(Path(sys.argv[2]), Path(sys.argv[3])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO_ROOT), str(sarz), str(work / "det_c.tif")],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ),
    )
    other = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else "failed"
    return {"twice in process": first == second, "fresh process": other == first}


def _rss_child(scene: Path, rate: str, work: Path) -> None:
    """Child process: encode + decode ``scene``, print the peak RSS (MB) and seconds as JSON."""
    start = time.perf_counter()
    compress_raster(scene, work / "mem.sarz", input_kind="intensity", rate=rate)
    decompress_file(work / "mem.sarz", work / "mem.tif")
    # VmHWM belongs to this process image (ru_maxrss would include the forked parent's size)
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(float(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024.0
    print(json.dumps({"peak_rss_mb": peak, "seconds": time.perf_counter() - start}))


MEMORY_SCENES = ((2048, 2048), (2048, 8192), (8192, 2048))
"""(width, height) of the memory runs: 4 x taller shows whether memory grows with the scene's height
(it should not: strips), 4 x wider what one strip row costs."""


def memory_scaling(rate: str, work: Path, sizes: Sequence[tuple[int, int]] = MEMORY_SCENES,
                   ) -> dict[str, dict[str, float]]:
    """Peak RSS of a fresh process that encodes and decodes synthetic scenes of each (width, height)."""
    from engine.synthetic import write_scene_pair

    out: dict[str, dict[str, float]] = {}
    for width, height in sizes:
        label = f"{width} x {height}"
        scene = work / f"mem_{width}x{height}.tif"
        write_scene_pair(scene, work / f"mem_{width}x{height}_opt.tif", width=width, height=height,
                         seed=SYNTHETIC_SEED)
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from benchmarks.compression.checks import _rss_child; "
            "_rss_child(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(REPO_ROOT), str(scene), rate, str(work)],
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ),
        )
        if done.returncode == 0:
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            log.warning("memory run of %s px failed: %s", label, done.stderr[-500:])
        scene.unlink(missing_ok=True)
    return out


# ------------------------------------------------------------------ ONNX Runtime vs PyTorch
def _encoder_widths(encoder_path: Path) -> tuple[int, int, int] | None:
    import onnx

    model = onnx.load(str(encoder_path))
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    outs: list[int] = []
    for node in model.graph.node:  # the four stride-2 5x5 convolutions: widths..., latent channels
        strides = [list(a.ints) for a in node.attribute if a.name == "strides"]
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in inits and strides == [[2, 2]]:
            dims = inits[node.input[1]]
            if len(dims) == 4 and dims[2] == 5:
                outs.append(int(dims[0]))
    return (outs[0], outs[1], outs[2]) if len(outs) >= 4 else None


def speed_onnx_vs_torch(rate: str, batch: int = 4, tile: int = 256, repeats: int = 3) -> dict[str, Any]:
    """Same network (architecture and size of the shipped model, one set of weights) in both runtimes."""
    import onnxruntime as ort
    import torch

    from engine.runtime import read_metadata
    from training.compression.models import ModelConfig, SarCodec

    enc_path, _ = bundled_codec(rate)
    meta = read_metadata(enc_path)
    widths = _encoder_widths(enc_path) or ModelConfig().widths
    cfg = ModelConfig(
        variant=meta.extra.get("architecture", "B"), widths=widths, latent_channels=meta.latent_channels
    )
    torch.manual_seed(0)
    codec = SarCodec(cfg).eval()
    x = torch.rand(batch, 1, tile, tile)
    with torch.no_grad():
        y = torch.round(codec.encoder(x))
    tmp = Path(tempfile.mkdtemp(prefix="bench_speed_"))
    paths = {}
    for name, module, dummy, inp, out in (
        ("encoder", codec.encoder, x, "x", "y"),
        ("decoder", codec.decoder, y, "y_hat", "x_hat"),
    ):
        paths[name] = tmp / f"{name}.onnx"
        torch.onnx.export(
            module,
            (dummy,),
            str(paths[name]),
            input_names=[inp],
            output_names=[out],
            dynamic_axes={inp: {0: "N", 2: "H", 3: "W"}},
            opset_version=17,
            dynamo=False,
        )

    def best(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    results: dict[str, Any] = {
        "architecture": cfg.variant,
        "widths": list(widths),
        "latent": cfg.latent_channels,
        "batch": batch,
        "tile": tile,
        "torch_threads": torch.get_num_threads(),
    }
    for name, dummy, inp in (("encoder", x, "x"), ("decoder", y, "y_hat")):
        module = codec.encoder if name == "encoder" else codec.decoder
        session = ort.InferenceSession(str(paths[name]), providers=["CPUExecutionProvider"])
        arr = dummy.numpy()

        def run_torch(m: Any = module, d: Any = dummy) -> object:
            with torch.no_grad():
                return m(d)

        def run_ort(s: Any = session, a: np.ndarray = arr, i: str = inp) -> object:
            return s.run(None, {i: a})

        t_torch = best(run_torch)
        t_ort = best(run_ort)
        mpix = batch * tile * tile / 1e6
        results[name] = {"torch_mpix_s": mpix / t_torch, "onnxruntime_mpix_s": mpix / t_ort}
    return results
