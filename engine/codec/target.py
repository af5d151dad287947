"""Compress with the rate point a user asked for: by name, by a quality in words, or to meet a target.

A target in bits per pixel is checked on the file itself (its real size, per coded band); a target
PSNR (dB, peak = the band's dB range) on the decoded file against the input, as
``sartoolbox:compressionquality`` measures it (:func:`engine.codec.quality.assess`, streamed by strips; with
several bands, the lowest). The search starts at the point whose typical real-SAR figures meet the target
(:func:`.rate_choice.first_guess`), walks to the next point while this scene's own figures
predict that it meets the target too (a larger point for a size, a smaller one for a quality) and
back while the target is missed. Each step is one more encoding of the whole scene; the file kept is
moved into place at the end, and the others are removed (also on error or cancel). The file format
has no per-file quantisation step (decoders take the model's), so the choice is among the shipped
points.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..run import IsCancelled, Log, Progress, Run
from .encode import EncodeResult, compress_raster
from .rate_choice import (
    DEFAULT_RATE,
    check_target,
    first_guess,
    rate_for_quality,
    resolve_rate,
    surviving_rates,
)
from .rate_points import RateFigures, real_sar_figures

logger = logging.getLogger(__name__)


def compress_choice(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    rate: str | None = DEFAULT_RATE,
    quality: str | None = None,
    target_bpp: float | None = None,
    target_psnr: float | None = None,
    encoder_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    is_cancelled: IsCancelled | None = None,
    log: Log | None = None,
    **options: Any,
) -> EncodeResult:
    """Compress with a custom encoder, else to a target, else at a quality, else at ``rate``.

    ``options`` go to :func:`engine.codec.encode.compress_raster` (band, input_kind, rdo, post_filter...).
    """
    run = Run.of(progress, is_cancelled, log)
    check_target(target_bpp, target_psnr)
    if encoder_path is not None:
        if quality or target_bpp is not None or target_psnr is not None:
            run.say("A custom encoder model is given: the quality and target choices are not used",
                    logger=logger)
        return compress_raster(input_path, output_path, encoder_path=encoder_path, progress=progress,
                               is_cancelled=is_cancelled, log=log, **options)
    if target_bpp is not None or target_psnr is not None:
        return compress_to_target(input_path, output_path, target_bpp=target_bpp, target_psnr=target_psnr,
                                  run=run, **options)
    if quality:
        rate = rate_for_quality(quality)
        run.say(f"Quality '{quality}': rate point {rate}", logger=logger)
    if rate is None:
        raise InputError("Give a rate point, a quality or a target.")
    return compress_raster(input_path, output_path, rate=rate, progress=progress, is_cancelled=is_cancelled,
                           log=log, **options)


def rates_a_choice_may_run(rate: str | None = DEFAULT_RATE, quality: str | None = None,
                           target_bpp: float | None = None, target_psnr: float | None = None) -> list[str]:
    """The rate points :func:`compress_choice` may run with these choices (without a custom encoder): every
    surviving point for a target (the search may reach any), else the point of the quality word, else
    ``rate`` (a retired point: its successor). What a batch run must find on its workers."""
    if target_bpp is not None or target_psnr is not None:
        return surviving_rates()
    chosen = rate_for_quality(quality) if quality else rate
    if chosen is None:
        raise InputError("Give a rate point, a quality or a target.")
    return [resolve_rate(chosen)]


@dataclass(frozen=True)
class Trial:
    """One encoding of the scene at ``rate``: the file, its figures and whether it meets the target."""

    rate: str
    path: Path
    result: EncodeResult
    figure: float
    meets: bool


class _Search:
    """The trials of one target search; :meth:`run` returns the trial to keep."""

    def __init__(self, encode: Callable[[str], tuple[Path, EncodeResult, float]], target: float,
                 by_size: bool, figures: dict[str, RateFigures]) -> None:
        self.encode, self.target, self.by_size, self.figures = encode, target, by_size, figures
        self.order = [r for r in surviving_rates() if r in figures]
        self.trials: dict[str, Trial] = {}

    def meets(self, figure: float) -> bool:
        return figure <= self.target if self.by_size else figure >= self.target

    def typical(self, rate: str) -> float:
        return self.figures[rate].bpp if self.by_size else self.figures[rate].psnr

    def predicted(self, rate: str, trial: Trial) -> float:
        """``rate``'s figure on this scene, from ``trial``'s offset to its own typical figure."""
        if self.by_size:
            return self.typical(rate) * trial.figure / self.typical(trial.rate)
        return self.typical(rate) + trial.figure - self.typical(trial.rate)

    def run(self, start: str) -> Trial:
        better = 1 if self.by_size else -1  # more bits for a size, fewer for a quality
        i, kept = self.order.index(start), None
        while 0 <= i < len(self.order) and self.order[i] not in self.trials:
            rate = self.order[i]
            path, result, figure = self.encode(rate)
            trial = self.trials[rate] = Trial(rate, path, result, figure, self.meets(figure))
            if trial.meets:
                kept = trial
                nxt = i + better
                if not (0 <= nxt < len(self.order) and self.meets(self.predicted(self.order[nxt], trial))):
                    break
                i = nxt
            elif kept is not None:
                break
            else:
                i -= better
        if kept is not None:
            return kept
        return self.trials[self.order[0] if self.by_size else self.order[-1]]


def compress_to_target(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    target_bpp: float | None = None,
    target_psnr: float | None = None,
    run: Run,
    **options: Any,
) -> EncodeResult:
    """Compress with the surviving rate point that meets one target (see the module docstring)."""
    from ..raster_io import check_writable

    check_target(target_bpp, target_psnr)
    if options.get("rdo"):
        raise InputError("Optimised quantisation does not combine with a target (the hyperprior rate points "
                         "do not take it); turn one of them off.")
    out = check_writable(output_path)
    by_size = target_bpp is not None
    target = float(target_bpp if by_size else target_psnr)  # type: ignore[arg-type]
    figures = real_sar_figures()
    start = first_guess(target_bpp, target_psnr, figures)
    unit = "bits per pixel" if by_size else "dB PSNR"
    run.say(f"Target {target:g} {unit}: starting with rate point {start} (typical on real SAR: "
            f"{figures[start].bpp:.2f} bpp, {figures[start].psnr:.1f} dB)", logger=logger)
    search = _Search(_trial_encoder(input_path, out, by_size, run, options), target, by_size, figures)
    try:
        kept = search.run(start)
        run.check("Compression")
        os.replace(kept.path, out)
    finally:
        for trial in search.trials.values():
            trial.path.unlink(missing_ok=True)
    _report(kept, target, unit, run)
    return dataclasses.replace(kept.result, path=out)


def _report(kept: Trial, target: float, unit: str, run: Run) -> None:
    figure = f"{kept.figure:.3f} {unit}"
    if kept.meets:
        run.say(f"Kept rate point {kept.rate}: {figure} meets the target {target:g}", logger=logger)
    else:
        run.warn(f"No rate point meets the target {target:g} {unit} on this scene; kept the closest, "
                 f"{kept.rate}: {figure}", logger=logger)


def _trial_encoder(input_path: str | os.PathLike[str], out: Path, by_size: bool, run: Run,
                   options: dict[str, Any]) -> Callable[[str], tuple[Path, EncodeResult, float]]:
    """A function that encodes the scene at a rate point into a trial file beside ``out``: (file, result,
    its bits per pixel or PSNR). The number of trials is not known in advance: trial k takes the share
    ``1 - 2**-k .. 1 - 2**-(k + 1)`` of the progress bar, so the bar never goes back."""
    done = [0]

    def encode(rate: str) -> tuple[Path, EncodeResult, float]:
        path = out.with_name(f".{out.stem}.trial-{rate}-{uuid.uuid4().hex[:8]}{out.suffix}")
        k = done[0]
        done[0] += 1
        trial_run = run.span(1.0 - 0.5**k, 1.0 - 0.5 ** (k + 1))
        result = compress_raster(input_path, path, rate=rate, progress=trial_run.progress,
                                 is_cancelled=run.is_cancelled, log=run.log, **options)
        try:
            kind = str(options.get("input_kind", "intensity"))
            figure = (result.bpp / max(len(result.bands), 1) if by_size
                      else _decoded_psnr(input_path, path, result, kind, run))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        run.say(f"Rate point {rate}: {result.bpp:.3f} bpp" + ("" if by_size else f", PSNR {figure:.2f} dB"),
                logger=logger)
        return path, result, figure

    return encode


def _decoded_psnr(input_path: str | os.PathLike[str], sarz: Path, result: EncodeResult, kind: str,
                  run: Run) -> float:
    """The lowest PSNR over the coded bands of ``sarz`` against the input, as
    ``sartoolbox:compressionquality`` measures it (:func:`engine.codec.quality.assess`: streamed by strips,
    peak = the band's dB range). The file is decoded once, every band in step, into a temporary GeoTIFF."""
    from .decode import decompress_file
    from .quality.metrics import assess

    bands = [f.band for f in result.bands] or [1]
    with tempfile.TemporaryDirectory(prefix="sar_target_") as tmp:
        decoded = decompress_file(sarz, Path(tmp) / "decoded.tif", output_kind="db",
                                  is_cancelled=run.is_cancelled).path
        return min(assess(input_path, decoded, band=band, reconstruction_band=i, reference_kind=kind,
                          reconstruction_kind="db", is_cancelled=run.is_cancelled).psnr
                   for i, band in enumerate(bands, start=1))
