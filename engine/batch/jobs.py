"""One scene, one job: what each batch algorithm writes and which engine entry point makes it.

Pure of Dask: a job is a plain picklable function call that a worker runs; it
returns the scene's figures or raises. The registry :data:`ALGORITHMS` maps the
command-line name to its :class:`Algorithm`, one record per job: output naming, completeness check,
the call itself, and its command-line options with their check (:mod:`.options`).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import options as cli

logger = logging.getLogger(__name__)

Options = Mapping[str, Any]

#: Raster files a batch algorithm takes as scenes.
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")


@dataclass(frozen=True)
class Algorithm:
    """A batch algorithm: the engine call for one scene and the files it leaves.

    A scene ``<stem>.<ext>`` gives ``<stem><suffix>`` in the output folder for each of
    ``output_suffixes`` (the first is the main output); ``run(input, outputs, options)`` makes
    them and returns the scene's key figures. ``arguments(parser)`` adds the job's command-line
    options (their values are ``options``); ``check(args)`` says what is wrong with them, or ``None``.
    """

    name: str
    help: str
    input_suffixes: tuple[str, ...]
    output_suffixes: tuple[str, ...]
    run: Callable[[Path, list[Path], Options], dict[str, Any]]
    arguments: Callable[[argparse.ArgumentParser], None]
    check: Callable[[argparse.Namespace], str | None] = cli.no_check

    def outputs(self, source: Path, out_dir: Path) -> list[Path]:
        """Every file a complete run on ``source`` writes into ``out_dir``."""
        return [out_dir / f"{source.stem}{suffix}" for suffix in self.output_suffixes]

    def complete(self, source: Path, out_dir: Path) -> bool:
        """True when every output of ``source`` already exists (outputs are written atomically)."""
        return all(p.is_file() for p in self.outputs(source, out_dir))


def _todb(source: Path, outputs: list[Path], options: Options) -> dict[str, Any]:
    from ..radiometry.convert import convert_db

    r = convert_db(source, outputs[0], band=options["band"], input_kind=options["input_kind"],
                   noise_floor_db=options["noise_floor_db"])
    return {"valid_pixels": r.valid_pixels, "min_db": r.minimum, "max_db": r.maximum}


def _compress(source: Path, outputs: list[Path], options: Options) -> dict[str, Any]:
    from ..codec.target import compress_choice

    r = compress_choice(source, outputs[0], band=options["band"], input_kind=options["input_kind"],
                        rate=options["rate"], quality=options.get("quality"),
                        target_bpp=options.get("target_bpp"), target_psnr=options.get("target_psnr"),
                        rdo=options["rdo"], post_filter=options["post_filter"])
    return {"bpp": round(r.bpp, 4), "bytes": r.bytes, "model_id": r.model_id,
            "bands": [{"band": f.band, "description": f.description, "bytes": f.bytes, "bpp": round(f.bpp, 4)}
                      for f in r.bands]}


def _decompress(source: Path, outputs: list[Path], options: Options) -> dict[str, Any]:
    from ..codec.decode import decompress_file

    r = decompress_file(source, outputs[0], output_kind=options["output_kind"])
    return {"width": r.width, "height": r.height, "bands": r.bands, "model_id": r.model_id}


def _coregister(source: Path, outputs: list[Path], options: Options) -> dict[str, Any]:
    from ..registration.shift.api import coregister

    r = coregister(source, options["reference"], method=options["method"], mode=options["mode"],
                   resample=True, output_path=outputs[0], report_path=outputs[1])
    return {"shift_x": round(r.shift_x, 3), "shift_y": round(r.shift_y, 3),
            "n_points": r.n_points, "method": r.method}


def _translate(source: Path, outputs: list[Path], options: Options) -> dict[str, Any]:
    from ..translation import translate

    r = translate(source, outputs[0], band=options["band"], input_kind=options["input_kind"],
                  model=options["model"])
    return {"valid_pixels": r.valid_pixels, "tiles": r.tiles, "model_id": r.model_id}


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("todb", "convert one band to dB (<stem>_db.tif)", RASTER_SUFFIXES, ("_db.tif",), _todb,
                  cli.todb_arguments),
        Algorithm("compress", "compress every band (or --band) with the learned codec (<stem>.sarz)",
                  RASTER_SUFFIXES, (".sarz",), _compress, cli.compress_arguments, cli.check_compress),
        Algorithm("decompress", "decode .sarz files to GeoTIFF (<stem>.tif)", (".sarz",), (".tif",),
                  _decompress, cli.decompress_arguments),
        Algorithm("coregister", "co-register every input onto one --reference (<stem>_coreg.tif + .json)",
                  RASTER_SUFFIXES, ("_coreg.tif", "_coreg.json"), _coregister, cli.coregister_arguments,
                  cli.check_coregister),
        Algorithm("translate", "render each SAR scene as synthetic optical-looking RGB (<stem>_rgb.tif)",
                  RASTER_SUFFIXES, ("_rgb.tif",), _translate, cli.translate_arguments),
    )
}
"""Batch algorithms by command-line name."""


STATUSES = ("ok", "skipped", "failed")


def count_statuses(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many records are ok, skipped (already complete) and failed."""
    return {s: sum(r["status"] == s for r in records) for s in STATUSES}


def run_scene(algorithm: str, source: str, out_dir: str, options: Options) -> dict[str, Any]:
    """Run one scene; never raises: returns its summary record (status ok / failed / skipped).

    This is the function a Dask worker executes, so it takes and returns plain types.
    """
    algo = ALGORITHMS[algorithm]
    src, out = Path(source), Path(out_dir)
    outputs = algo.outputs(src, out)
    record: dict[str, Any] = {"input": str(src), "outputs": [str(p) for p in outputs],
                              "status": "ok", "error": None, "seconds": 0.0, "figures": {}}
    if algo.complete(src, out):
        record["status"] = "skipped"
        return record
    start = time.perf_counter()
    try:
        record["figures"] = algo.run(src, outputs, options)
    except Exception as exc:  # per-scene isolation: every failure is recorded, the batch goes on
        logger.warning("%s failed on %s: %s", algorithm, src.name, exc)
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record
