"""Where the learned codec's quality is lost: quantisation or the autoencoder itself?

For each shipped rate point and a few real SAR images this decodes the
encoder's latents three ways, on whole 256 x 256 tiles (no file, no blending):

* ``quantised``: ``round(y - m) + m``, what the codec stores;
* ``continuous``: ``y`` itself, i.e. infinite bits: the autoencoder's ceiling;

and compares with a *linear* reference that has the same number of real
values per 16 x 16 block as the latent grid: a 16 x 16 DCT keeping the
``C`` coefficients of highest mean energy (the same ones for every block).
If ``continuous`` is close to ``quantised``, more bits cannot help; if the DCT
beats ``continuous``, the network's capacity or training is the limit. (With
``C >= 256`` the DCT is complete, hence lossless up to float rounding.)

PSNR in normalised dB, peak = the model's dB range. Run from the repository root:
``make bench-codec-ceiling``, i.e.
``python -m benchmarks.investigations.codec_ceiling --data ../shared/data/real``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.fft import dctn, idctn

from engine.codec.models import bundled_codec, entropy_table, find_decoder, load_encoder, shipped_rates
from engine.codec.quality.metrics import psnr
from engine.preprocess import normalise
from training.data import load_display_png_db

logger = logging.getLogger(__name__)

TILE = 256
BLOCK = 16
IMAGES = {
    "3MOS SEN_city_8 (held out)": "opt_sar_3mos/SEN_city_8_sar.png",
    "3MOS SEN_water_9 (held out)": "opt_sar_3mos/SEN_water_9_sar.png",
    "sar_sar_r2d2 g1 (benchmark only)": "sar_sar_r2d2/g1.png",
}


def tiles_of(x: np.ndarray, tile: int = TILE) -> np.ndarray:
    """Non-overlapping ``tile`` x ``tile`` tiles, ``[N, 1, tile, tile]``."""
    h, w = x.shape
    out = [x[i:i + tile, j:j + tile]
           for i in range(0, h - tile + 1, tile) for j in range(0, w - tile + 1, tile)]
    if not out:
        raise ValueError(f"image of {h} x {w} px is smaller than one {tile} px tile")
    return np.stack(out)[:, None].astype(np.float32)


def dct_psnr(x: np.ndarray, keep: int, block: int = BLOCK) -> float:
    """PSNR of a block DCT keeping the ``keep`` coefficients of highest mean energy."""
    n, _, h, w = x.shape
    blocks = x.reshape(n, h // block, block, w // block, block).transpose(0, 1, 3, 2, 4)
    blocks = blocks.reshape(-1, block, block)
    coeffs = dctn(blocks, axes=(1, 2), norm="ortho")
    order = np.argsort(-(coeffs**2).mean(axis=0).ravel())
    mask = np.zeros(block * block, dtype=bool)
    mask[order[:keep]] = True
    rec = idctn(coeffs * mask.reshape(block, block), axes=(1, 2), norm="ortho")
    return psnr(blocks, rec, peak=1.0)


def run_batches(model: Any, x: np.ndarray, batch: int = 4) -> np.ndarray:
    """Run an engine ``OnnxModel`` over ``x`` in batches."""
    return np.concatenate([model.run(x[i:i + batch].astype(np.float32)) for i in range(0, len(x), batch)])


def ceiling_rows(data: Path) -> list[str]:
    """Markdown rows: image, rate, PSNR quantised / continuous, DCT with C coefficients."""
    rows = []
    for rate in shipped_rates():
        enc_path, _ = bundled_codec(rate)
        encoder = load_encoder(enc_path)
        meta = encoder.metadata
        decoder = find_decoder(meta.model_id, meta.weights_sha256)
        table = entropy_table(meta, enc_path.name)
        for label, rel in IMAGES.items():
            if not (data / rel).is_file():
                logger.warning("skipping %s: %s not found", label, data / rel)
                continue
            db = load_display_png_db(data / rel, noise_floor_db=meta.noise_floor_db)
            x = tiles_of(np.nan_to_num(normalise(db, meta)))
            y = run_batches(encoder, x)
            y_hat = np.stack([table.dequantise(table.quantise(tile)) for tile in y])
            quantised = psnr(x, run_batches(decoder, y_hat), peak=1.0)
            continuous = psnr(x, run_batches(decoder, y), peak=1.0)
            linear = dct_psnr(x, meta.latent_channels)
            rows.append(f"| {label} | {rate} | {quantised:.2f} | {continuous:.2f} | "
                        f"{meta.latent_channels} | {linear:.2f} |")
            logger.info("%s %s: quantised %.2f, continuous %.2f, DCT %.2f dB", label, rate,
                     quantised, continuous, linear)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/real"),
                   help="folder of the real samples")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    header = [
        "| Image | Rate | PSNR dB, quantised latents | PSNR dB, continuous latents | C | "
        "PSNR dB, 16 x 16 DCT keeping C coefficients |",
        "|---|---|---:|---:|---:|---:|",
    ]
    print("\n".join(header + ceiling_rows(args.data)))  # the table is the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
