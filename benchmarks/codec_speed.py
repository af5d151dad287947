"""Codec throughput on one synthetic scene with the execution provider the engine picks
(``SAR_TOOLBOX_PROVIDERS`` forces one): encode and decode Mpix/s, for GPU vs CPU comparisons.

    SAR_TOOLBOX_PROVIDERS=CUDAExecutionProvider python -m benchmarks.codec_speed --size 4096 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.pipeline import write_scene

logger = logging.getLogger("benchmarks.codec_speed")


def measure(size: int, rate: str) -> dict[str, object]:
    """Encode and decode one ``size`` x ``size`` scene; seconds, Mpix/s and the provider used."""
    from engine.codec.decode import decompress_file
    from engine.codec.encode import compress_raster
    from engine.codec.models import bundled_codec
    from engine.runtime import OnnxModel

    with tempfile.TemporaryDirectory(prefix="sar-codec-speed-") as tmp:
        scene, sarz, out = Path(tmp) / "s.tif", Path(tmp) / "s.sarz", Path(tmp) / "d.tif"
        write_scene(scene, size)
        encoder, _ = bundled_codec(rate)
        provider = OnnxModel(encoder).provider
        t0 = time.perf_counter()
        enc = compress_raster(scene, sarz, rate=rate)
        t1 = time.perf_counter()
        decompress_file(sarz, out)
        t2 = time.perf_counter()
    mpix = size * size / 1e6
    return {"size": size, "rate": rate, "provider": provider, "bpp": enc.bpp,
            "encode_s": round(t1 - t0, 3), "decode_s": round(t2 - t1, 3),
            "encode_mpix_s": round(mpix / (t1 - t0), 3), "decode_mpix_s": round(mpix / (t2 - t1), 3)}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print (and optionally save) the figures."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rate", default="r2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    figures = measure(args.size, args.rate)
    logger.info("%s", json.dumps(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
